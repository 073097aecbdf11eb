"""Outbound HTTP on a user's behalf (webhooks, image URLs), with the SSRF guard at connect time.

net/url_rules.py checks a URL when a job is submitted; by the time we call it, its DNS may answer
with 169.254.169.254 (rebinding). So the connection itself resolves the host, checks every
address with the same rules (`urls.address_problem`) and connects to the checked address,
never re-resolving in between. Every hop of a redirect goes through the same check, and no
proxy is used (a proxy would resolve the name itself, out of our sight).
"""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as u3conn

from veorelay.net.url_rules import address_problem, is_literal, resolve


class BlockedDestination(Exception):
    """The destination is not one veo-relay calls for a user. Deliberately not an OSError, so
    urllib3 and requests let it through unchanged (no retries, no wrapping) with its message."""


def guarded_session(allow_loopback: bool = False, user_agent: str = "veo-relay/1") -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies, .netrc or CA overrides from the environment
    adapter = GuardedAdapter(allow_loopback=allow_loopback)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class GuardedAdapter(HTTPAdapter):
    def __init__(self, allow_loopback: bool = False, **kwargs):
        self.allow_loopback = allow_loopback
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_conn, https_conn = _connection_classes(self.allow_loopback)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }

    def send(self, request: requests.PreparedRequest, *args, **kwargs) -> requests.Response:
        scheme = urlsplit(request.url or "").scheme
        if scheme not in ("https", "http"):
            raise BlockedDestination(f"refused to call {scheme or 'a relative'} URL: only https is allowed")
        return super().send(request, *args, **kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise BlockedDestination("refused to call a user's URL through a proxy")


def _connection_classes(allow_loopback: bool) -> tuple[type[HTTPConnection], type[HTTPSConnection]]:
    def new_conn(self) -> socket.socket:
        return _checked_connection(self, plain_http=not isinstance(self, HTTPSConnection), allow_loopback=allow_loopback)

    return (
        type("GuardedHTTPConnection", (HTTPConnection,), {"_new_conn": new_conn}),
        type("GuardedHTTPSConnection", (HTTPSConnection,), {"_new_conn": new_conn}),
    )


def _checked_connection(conn: HTTPConnection, plain_http: bool, allow_loopback: bool) -> socket.socket:
    """Resolve, check every address, then connect to a checked address (TLS still verifies the
    certificate against the host name: HTTPSConnection wraps this socket with server_hostname)."""
    host = conn._dns_host  # what urllib3 would have resolved: the URL's host, brackets stripped
    try:
        addresses = resolve(host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    for address in addresses:
        problem = address_problem(address, allow_loopback)
        if problem:
            where = f"{address} is" if is_literal(host, address) else f"it resolves to {address},"
            raise BlockedDestination(f"refused to connect to {conn.host}: {where} {problem}")
    if plain_http and not (allow_loopback and all(a.is_loopback for a in addresses)):
        raise BlockedDestination(f"refused to call http://{conn.host}: only https is allowed")
    error: ConnectTimeoutError | None = None  # NewConnectionError is one too
    for address in addresses:
        try:
            return u3conn.create_connection(
                (str(address), conn.port), conn.timeout,
                source_address=conn.source_address, socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            error = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})")
            error.__cause__ = exc
        except OSError as exc:
            error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
            error.__cause__ = exc
    raise error or NewConnectionError(conn, f"{conn.host} resolves to no address")
