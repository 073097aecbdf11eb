"""Checks on URLs veo-relay calls on a user's behalf (webhooks, image URLs): https only, and
never an address inside the platform (loopback, private, link-local, metadata server...).

This is the early check, for a clear 400 when a job is submitted. It is not enough on its own:
DNS can answer differently a second later (rebinding), so `net/guarded.py` checks the address
again at the moment it connects, with the same rules (`address_problem`).
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from veorelay.core.errors import ApiError, ErrorCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names of metadata servers: refused by name, so the error is clear even where they do not resolve.
BLOCKED_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"})

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not global, not "private" either
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are the IPv4 address
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # local-use translation: never a user's endpoint
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d, still routed to a.b.c.d by some stacks


def check_user_url(url: str, field: str, allow_loopback: bool = False) -> None:
    """Refuse (ApiError 400, naming `field`) a URL veo-relay must not call for a user."""
    problem = url_problem(url, allow_loopback)
    if problem:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} {problem}", field)


def check_webhook_url(url: str, allow_loopback: bool = False, field: str = "webhook_url") -> None:
    check_user_url(url, field, allow_loopback)


def url_problem(url: str, allow_loopback: bool = False) -> str | None:
    """Why this URL is refused ("must use https", "resolves to 10.0.0.1, a private address"), or None.

    Never raises for a bad string: whatever urlsplit, the IDNA codec or the resolver make of it,
    the answer is a reason (tests/unit/test_url_fuzz.py feeds it arbitrary text)."""
    parsed = _parsed(url)
    if isinstance(parsed, str):
        return parsed
    scheme, host, port = parsed
    if host.rstrip(".").lower() in BLOCKED_HOSTNAMES:
        return f"names {host}, a metadata server"
    try:
        addresses = resolve(host, port or (443 if scheme == "https" else 80))
    except OSError:
        return f"has a host that cannot be resolved ({host})"
    for address in addresses:
        problem = address_problem(address, allow_loopback)
        if problem:
            return f"is {problem}" if is_literal(host, address) else f"resolves to {address}, {problem}"
    if scheme == "http" and not (allow_loopback and all(a.is_loopback for a in addresses)):
        return "must use https"
    return None


def _parsed(url: str) -> tuple[str, str, int | None] | str:
    """(scheme, host, port) of a well-formed absolute http(s) URL, or why it is not one."""
    if any(ch.isspace() or ch == "\\" or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL", "[abc]" is not an IPv4 or IPv6 address...
        return "is not a valid URL (its host cannot be read)"
    if parts.scheme not in ("https", "http"):
        return "must use https"
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        return "has an invalid port"
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        return "must be an absolute URL without credentials"
    if port == 0:
        return "has an invalid port (0)"
    return _host_form_problem(parts.netloc) or (parts.scheme, host, port)


def _host_form_problem(netloc: str) -> str | None:
    """A host in brackets must be an IPv6 address, with nothing but `:port` after it."""
    hostport = netloc.rpartition("@")[2]
    if not hostport.startswith("["):
        return None
    inside, _, after = hostport[1:].partition("]")
    if after and not after.startswith(":"):
        return "has a malformed host (text after the bracketed address)"
    try:
        ipaddress.IPv6Address(inside.split("%")[0])
    except ValueError:
        return "has a bracketed host that is not an IPv6 address"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (all must pass: a client may use any of them)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (UnicodeError, ValueError) as exc:  # the IDNA codec: an empty or 64+ char label, a lone surrogate...
        raise socket.gaierror(socket.EAI_NONAME, f"not a host name: {type(exc).__name__}") from None
    # Drop an IPv6 zone ("fe80::1%eth0"): the address alone decides.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def is_literal(host: str, address: IPAddress) -> bool:
    """Whether the host was written as this very address (then there was nothing to resolve)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]) == address
    except ValueError:
        return False


def address_problem(address: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why veo-relay must not connect to this address for a user ("a private address"), or None.

    IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64) are judged
    by the IPv4 address inside, so ::ffff:169.254.169.254 is the metadata server too.
    """
    inner = embedded_ipv4(address)
    if inner is not None:
        problem = address_problem(inner, allow_loopback)
        return f"{problem} (as {inner})" if problem else None
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address in _METADATA:
        return "the cloud metadata server"
    return _range_problem(address)


def _range_problem(address: IPAddress) -> str | None:
    """The special-purpose range a (non-loopback, non-metadata) address is in, or None."""
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a unique-local address"
    if isinstance(address, ipaddress.IPv6Address) and address in _LOCAL_NAT64:
        return "a local-use NAT64 address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where traffic goes
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
