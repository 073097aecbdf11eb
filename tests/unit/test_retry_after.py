"""The one Retry-After parser (core/retry_after.py), shared by providers and webhook delivery."""
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veorelay.core.retry_after import retry_after_seconds
from veorelay.net import webhooks
from veorelay.providers import http

NOW = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize("value,expected", [
    ("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("1.5", 1.5),
    (None, None), ("", None), ("   ", None), ("soon", None), ("-5", None), ("5s", None), ("1e3", None),
    ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
    ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # already past: no wait
    ("Wednesday, 21-Oct-26 07:29:00 GMT", 60.0),  # RFC 850, obsolete but allowed
    ("Wed Oct 21 07:30:00 2026", 120.0),  # asctime: no zone, read as UTC
    ("Wed, 32 Oct 2026 07:28:30 GMT", None),
])
def test_seconds_or_an_http_date(value, expected):
    assert retry_after_seconds(value, NOW) == expected


def test_providers_and_webhooks_read_it_with_the_same_parser():
    assert webhooks.retry_after_seconds is retry_after_seconds
    assert http.retry_after_seconds is retry_after_seconds


@given(st.integers(min_value=0, max_value=10**9))
def test_any_delay_seconds_is_read_as_is(seconds):
    assert retry_after_seconds(str(seconds), NOW) == float(seconds)


@given(st.integers(min_value=0, max_value=10**8))
def test_any_future_http_date_is_the_wait_until_then(seconds):
    when = NOW + timedelta(seconds=seconds)
    assert retry_after_seconds(format_datetime(when, usegmt=True), NOW) == float(seconds)


@given(st.text(max_size=40))
def test_no_value_makes_it_raise_or_go_negative(value):
    wait = retry_after_seconds(value, NOW)
    assert wait is None or wait >= 0
