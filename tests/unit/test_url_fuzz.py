"""URLs a user gives (webhook_url, image url) as a class: whatever the string, the check
answers ApiError(400, invalid_request, field=<the field>) or accepts it, never anything else
(no ValueError from urlsplit, no UnicodeError from the IDNA codec, no 500).

The resolver is replaced by one that never leaves the machine but fails like the real one
(odd_urls.py)."""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from veorelay.core.errors import ApiError
from veorelay.net import url_rules

from .odd_urls import ANY_CHAR, offline_getaddrinfo, urls

pytestmark = pytest.mark.badinput


@pytest.fixture(autouse=True)
def offline_dns(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", offline_getaddrinfo)


def judged(url: str, field: str = "webhook_url", allow_loopback: bool = False) -> str | None:
    """None when accepted; the message when refused, after checking the refusal's shape."""
    try:
        url_rules.check_user_url(url, field, allow_loopback)
    except ApiError as exc:
        assert (exc.status, exc.code, exc.field) == (400, "invalid_request", field), exc.body()
        assert exc.message.startswith(f"{field} ")
        return exc.message
    return None


# ---------------------------------------------------------------------------- properties
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=st.one_of(urls(), st.text(ANY_CHAR, max_size=60)))
@example(url="https://[abc]/")  # urlsplit: ValueError
@example(url="https://[::1")  # urlsplit: Invalid IPv6 URL
@example(url="https://[v1.future]/")  # bracketed, not IPv6 (urlsplit lets IPvFuture through)
@example(url="https://[::1]junk/")
@example(url="https://example.com:0/")
@example(url="https://example.com:65536/")
@example(url="https://exämple..com/")  # IDNA: an empty label
@example(url="https://" + "a" * 64 + ".com/")  # IDNA: a 64-character label
@example(url="https://\ud800.com/")  # a lone surrogate
def test_any_string_is_refused_with_a_400_naming_the_field_or_accepted(offline_dns, url):
    message = judged(url)
    if message is None:  # what is accepted is a plain public https URL
        parts = url_rules.urlsplit(url)
        assert parts.scheme == "https" and parts.hostname and parts.port != 0 and parts.username is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=urls())
def test_the_field_named_is_the_one_checked(offline_dns, url):
    judged(url, field="reference_images.2.image.url")


@pytest.mark.parametrize("url,words", [
    ("https://[abc]/", "not a valid URL"),
    ("https://[1.2.3.4]/", "not a valid URL"),
    ("https://[::1", "not a valid URL"),
    ("https://[v1.future]/", "bracketed host that is not an IPv6 address"),
    ("https://[::1]junk/", "malformed host"),
    ("https://example.com:0/", "invalid port (0)"),
    ("https://example.com:65536/", "invalid port"),
    ("https://example.com:+443/", "invalid port"),
    ("https://exämple..com/", "cannot be resolved"),
    ("https://" + "a" * 64 + ".com/", "cannot be resolved"),
    ("https://\ud800.com/", "cannot be resolved"),
    ("https://a\x7fb.com/", "control characters"),
    ("https://example.internal/", "private address"),
])
def test_each_odd_form_has_its_reason(url, words):
    message = judged(url)
    assert message is not None and words in message, message


def test_a_public_https_url_is_accepted_and_a_bracketed_public_ipv6_too():
    assert judged("https://example.com/hooks/veo?x=1") is None
    assert judged("https://[2606:2800:220:1:248:1893:25c8:1946]:8443/x") is None
