"""The SSRF guard: URLs refused at submission (net/url_rules.py) and addresses refused at connect time
(net/guarded.py), including DNS that changes its answer between the two (rebinding)."""
from __future__ import annotations

import http.server
import socket
import threading
import urllib.parse

import pytest
import requests

from veorelay.core.errors import ApiError
from veorelay.net.guarded import BlockedDestination, guarded_session
from veorelay.net.url_rules import check_webhook_url, url_problem

pytestmark = pytest.mark.badinput

PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"


class FakeDNS:
    """Names under .test answer from a table (a list of answers = one per lookup, the last one
    repeating: how a rebinding server behaves); everything else goes to the real resolver."""

    def __init__(self, monkeypatch):
        self.table: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.table:
                return real(host, port, family, type, proto, flags)
            self.lookups.append(name)
            answers = self.table[name]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def answer(self, name: str, *answers: list[str]) -> None:
        self.table[name] = list(answers)


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS(monkeypatch)
    fake.answer("public.test", [PUBLIC_V4])
    fake.answer("public6.test", [PUBLIC_V6])
    fake.answer("internal.test", ["10.1.2.3"])
    fake.answer("mixed.test", [PUBLIC_V4, "192.168.0.10"])  # one bad address is enough to refuse
    fake.answer("meta6.test", ["::ffff:169.254.169.254"])
    fake.answer("ula.test", ["fd12:3456::1"])
    return fake


REFUSED = [
    # (url, words the error must contain)
    ("http://public.test/hook", "must use https"),
    ("ftp://public.test/hook", "must use https"),
    ("file:///etc/passwd", "must use https"),
    ("gopher://public.test:70/", "must use https"),
    ("https:///no-host", "absolute URL"),
    ("https://user:pw@public.test/hook", "without credentials"),
    ("https://public.test:99999/", "invalid port"),
    ("https://evil.test\\@169.254.169.254/", "backslashes"),
    ("https://public.test/a b", "spaces"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://127.1/", "loopback"),
    ("https://2130706433/", "loopback"),  # 127.0.0.1 as one decimal number
    ("https://0x7f.0.0.1/", "loopback"),  # and in hex
    ("https://[::1]/hook", "loopback"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://10.0.0.1/", "private"),
    ("https://172.16.5.4/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://169.254.169.254/latest/meta-data/", "metadata server"),
    ("https://169.254.1.1/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fd00:ec2::254]/", "metadata server"),
    ("https://[fc00::5]/", "unique-local"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://[::ffff:127.0.0.1]/", "loopback address (as 127.0.0.1)"),
    ("https://[::ffff:169.254.169.254]/", "metadata server (as 169.254.169.254)"),
    ("https://[::ffff:10.0.0.1]/", "private address (as 10.0.0.1)"),
    ("https://[64:ff9b::a9fe:a9fe]/", "metadata server (as 169.254.169.254)"),  # NAT64
    ("https://[2002:a9fe:a9fe::1]/", "metadata server (as 169.254.169.254)"),  # 6to4
    ("https://[::7f00:1]/", "loopback address (as 127.0.0.1)"),  # IPv4-compatible
    ("https://240.0.0.1/", "reserved"),
    ("https://198.18.0.1/", "private"),  # benchmarking range
    ("https://metadata.google.internal/computeMetadata/v1/", "metadata server"),
    ("https://metadata/computeMetadata/v1/", "metadata server"),
    ("https://internal.test/hook", "resolves to 10.1.2.3, a private address"),
    ("https://mixed.test/hook", "resolves to 192.168.0.10, a private address"),
    ("https://meta6.test/hook", "metadata server"),
    ("https://ula.test/hook", "unique-local"),
    ("https://no-such-host.invalid/hook", "cannot be resolved"),
]


@pytest.mark.parametrize("url,words", REFUSED, ids=[u for u, _ in REFUSED])
def test_user_urls_that_reach_inside_the_platform_are_refused_with_the_reason(dns, url, words):
    with pytest.raises(ApiError) as refused:
        check_webhook_url(url)
    error = refused.value
    assert (error.status, error.code, error.field) == (400, "invalid_request", "webhook_url")
    assert error.message.startswith("webhook_url ") and words in error.message


@pytest.mark.parametrize("url", ["https://public.test/hook", "https://public6.test:8443/x?y=1", f"https://{PUBLIC_V4}/h", f"https://[{PUBLIC_V6}]/h"])
def test_public_https_urls_pass(dns, url):
    assert url_problem(url) is None


def test_loopback_is_allowed_only_by_the_local_stack_setting(dns):
    assert "loopback" in url_problem("http://127.0.0.1:8124/hook")
    assert url_problem("http://127.0.0.1:8124/hook", allow_loopback=True) is None
    assert url_problem("https://localhost/hook", allow_loopback=True) is None
    # The setting opens loopback only: private, link-local and metadata stay closed, and plain
    # http stays closed for anything that is not loopback.
    assert "private" in url_problem("https://10.0.0.1/", allow_loopback=True)
    assert "metadata" in url_problem("https://169.254.169.254/", allow_loopback=True)
    assert "https" in url_problem("http://public.test/", allow_loopback=True)


# ------------------------------------------------------------------ at connect time


@pytest.fixture(scope="module")
def local_server():
    """A plain-HTTP server on 127.0.0.1: /ok answers 200, /redirect?to=URL answers 302 to URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", urllib.parse.unquote(self.path.split("=", 1)[1]))
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_dns_that_changes_between_check_and_connect_is_refused_at_connect(dns):
    dns.answer("rebind.test", [PUBLIC_V4], ["169.254.169.254"])
    check_webhook_url("https://rebind.test/hook")  # first answer: a public address, accepted
    with pytest.raises(BlockedDestination, match=r"rebind\.test: it resolves to 169\.254\.169\.254, the cloud metadata server"):
        guarded_session().post("https://rebind.test/hook", data=b"{}", timeout=5)
    assert dns.lookups == ["rebind.test", "rebind.test"]  # resolved again, at connect time


def test_rebinding_to_loopback_is_refused_at_connect(dns, local_server):
    port = local_server.rsplit(":", 1)[1]
    dns.answer("rebind-lo.test", [PUBLIC_V4], ["127.0.0.1"])
    check_webhook_url(f"https://rebind-lo.test:{port}/ok")
    with pytest.raises(BlockedDestination, match="loopback"):
        guarded_session().get(f"https://rebind-lo.test:{port}/ok", timeout=5)


def test_the_guarded_session_connects_to_the_address_it_checked(local_server):
    assert guarded_session(allow_loopback=True).get(f"{local_server}/ok", timeout=5).status_code == 200
    with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1 is a loopback address"):
        guarded_session().get(f"{local_server}/ok", timeout=5)


@pytest.mark.parametrize("target,words", [
    ("http://169.254.169.254/latest/meta-data/", "metadata server"),
    ("http://internal.test/", "private"),
    ("http://[::ffff:a9fe:a9fe]/", "metadata server"),
    ("https://10.9.8.7/", "private"),
])
def test_every_redirect_hop_is_checked_again(dns, local_server, target, words):
    session = guarded_session(allow_loopback=True)  # the first hop (the local server) is allowed
    with pytest.raises(BlockedDestination, match=words):
        session.get(f"{local_server}/redirect?to={target}", timeout=5)


def test_a_redirect_to_another_scheme_is_refused(local_server):
    # The guarded session has adapters for http(s) only: requests finds none for file://.
    with pytest.raises(requests.exceptions.InvalidSchema, match="No connection adapters were found for 'file:///etc/passwd'"):
        guarded_session(allow_loopback=True).get(f"{local_server}/redirect?to=file:///etc/passwd", timeout=5)


def test_proxy_settings_from_the_environment_are_ignored(local_server, monkeypatch):
    # A proxy would resolve the name itself, after our check: the guarded session never uses one.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert guarded_session(allow_loopback=True).get(f"{local_server}/ok", timeout=5).status_code == 200
    with pytest.raises(BlockedDestination, match="proxy"):
        guarded_session(allow_loopback=True).get(f"{local_server}/ok", timeout=5, proxies={"http": "http://127.0.0.1:9"})
