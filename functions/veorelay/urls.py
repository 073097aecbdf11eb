"""Checks on URLs veo-relay calls on a user's behalf (webhooks): https only, and never an
address inside the platform (loopback, private, link-local, metadata server...)."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from .errors import ApiError, ErrorCode


def check_webhook_url(url: str, allow_loopback: bool = False, field: str = "webhook_url") -> None:
    parts = urlsplit(url)
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} must be an absolute URL without credentials", field)
    loopback_ok = allow_loopback and _is_loopback_host(host)
    if parts.scheme != "https" and not (loopback_ok and parts.scheme == "http"):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} must use https", field)
    for address in resolve(host, parts.port or (443 if parts.scheme == "https" else 80)):
        if not is_public_address(address) and not (allow_loopback and address.is_loopback):
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} points to a non-public address", field)


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"cannot resolve host {host!r}", "webhook_url") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
