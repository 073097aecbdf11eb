import json
from datetime import UTC, datetime

import standardwebhooks

from veorelay.core.events import webhook_id
from veorelay.net.webhooks import event_body, signed_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_verifies_with_the_standard_webhooks_library():
    now = datetime.now(UTC)
    body = event_body("job.succeeded", {"id": "j1", "status": "succeeded"}, now)
    headers = signed_headers(SECRET, webhook_id("j1", "job.succeeded"), body, now)
    payload = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "job.succeeded" and payload["data"]["id"] == "j1"
    assert headers["webhook-signature"].startswith("v1,")


def test_webhook_id_is_stable_per_job_and_event():
    # The same id in every process and on every retry: a pure function of the job and event.
    assert webhook_id("j1", "job.succeeded") == "msg_2380cb49aaae1b1a926f48304f0219e8"
    assert webhook_id("j1", "job.succeeded") != webhook_id("j1", "job.failed")
    assert webhook_id("j1", "job.succeeded") != webhook_id("j2", "job.succeeded")


def test_event_body_is_compact_json_with_type_timestamp_and_data():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert json.loads(event_body("job.failed", {"id": "x"}, now)) == {"type": "job.failed", "timestamp": "2026-01-02T03:04:05Z", "data": {"id": "x"}}


# ------------------------------------------------------------------ rotation, retries, one attempt

import http.server  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from veorelay.config import DEFAULT_WEBHOOK_RETRY_SCHEDULE_S  # noqa: E402
from veorelay.net.guarded import guarded_session  # noqa: E402
from veorelay.net.webhooks import post_event, retry_after_seconds  # noqa: E402
from veorelay.steps.deliver import MAX_RETRY_AFTER_S, next_delay_s  # noqa: E402

OLD_SECRET = "whsec_" + __import__("base64").b64encode(b"the-old-secret-being-retired!!").decode()


def test_while_a_secret_rotates_each_secret_signs_and_each_alone_verifies():
    now = datetime.now(UTC)
    body = event_body("job.succeeded", {"id": "j1"}, now)
    headers = signed_headers([SECRET, OLD_SECRET], webhook_id("j1", "job.succeeded"), body, now)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (SECRET, OLD_SECRET):  # a receiver holding either one accepts the event
        assert standardwebhooks.Webhook(secret).verify(body, headers)["data"]["id"] == "j1"
    stranger = "whsec_" + __import__("base64").b64encode(b"a-secret-nobody-was-given-ever").decode()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(stranger).verify(body, headers)


def test_progress_events_are_numbered_so_each_has_its_own_id():
    assert webhook_id("j1", "job.progress", 7) != webhook_id("j1", "job.progress", 8)
    assert webhook_id("j1", "job.progress", 7) == "msg_b974cff79dcda0defc84caf1424f44c9"


def test_the_default_schedule_spans_about_three_days():
    assert DEFAULT_WEBHOOK_RETRY_SCHEDULE_S[:3] == (0, 5, 300)
    assert 2.5 * 86400 < sum(DEFAULT_WEBHOOK_RETRY_SCHEDULE_S) < 3.5 * 86400
    assert len(DEFAULT_WEBHOOK_RETRY_SCHEDULE_S) == 10


def test_next_delay_follows_the_schedule_and_honours_a_longer_retry_after():
    schedule = (0, 5, 300)
    assert next_delay_s(schedule, 1, None) == 5
    assert next_delay_s(schedule, 2, None) == 300
    assert next_delay_s(schedule, 1, 60) == 60  # Retry-After longer than the schedule wins
    assert next_delay_s(schedule, 2, 60) == 300  # shorter: the schedule wins
    assert next_delay_s(schedule, 1, 10 ** 9) == MAX_RETRY_AFTER_S  # absurd values are capped
    assert next_delay_s(schedule, 3, None) is None  # used up: give up


@pytest.mark.badinput
@pytest.mark.parametrize("value,expected", [
    ("120", 120.0), (" 7 ", 7.0), ("", None), (None, None), ("soon", None), ("-5", None),
    ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0), ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),
])
def test_retry_after_is_read_as_seconds_or_an_http_date(value, expected):
    now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now) == expected


@pytest.fixture(scope="module")
def receiver():
    """A local receiver answering whatever status the path names: /status/302, /status/410, /slow."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/slow":
                time.sleep(2)
            status = int(self.path.rsplit("/", 1)[1]) if self.path.startswith("/status/") else 200
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            if status == 429:
                self.send_header("Retry-After", "42")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def attempt_to(url: str, allow_loopback: bool = True, timeout_s: float = 5):
    body = event_body("job.failed", {"id": "j9"}, datetime.now(UTC))
    return post_event(guarded_session(allow_loopback), url, "job.failed", webhook_id("j9", "job.failed"), body, [SECRET], timeout_s, attempt=3)


def test_one_attempt_records_status_latency_and_no_secret(receiver):
    result = attempt_to(f"{receiver}/status/204")
    assert result.delivered and result.status_code == 204 and result.error is None
    record = result.record()
    assert set(record) == {"event", "webhook_id", "attempt", "at", "status_code", "latency_ms", "error"}
    assert record["attempt"] == 3 and record["latency_ms"] >= 0
    assert SECRET not in repr(record)


@pytest.mark.faults
def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver):
    result = attempt_to(f"{receiver}/status/302")
    assert not result.delivered and result.status_code == 302
    assert result.error == "receiver answered 302 (redirects are not followed)"


@pytest.mark.faults
def test_gone_and_retry_after_are_read_from_the_answer(receiver):
    assert attempt_to(f"{receiver}/status/410").gone
    busy = attempt_to(f"{receiver}/status/429")
    assert (busy.status_code, busy.retry_after_s, busy.error) == (429, 42.0, "receiver answered 429")


@pytest.mark.faults
def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(receiver):
    result = attempt_to(f"{receiver}/slow", timeout_s=0.5)
    assert result.status_code is None and result.error == "no answer within 0.5s"


@pytest.mark.faults
def test_a_refused_address_is_recorded_as_blocked_not_raised(receiver):
    result = attempt_to(f"{receiver}/status/200", allow_loopback=False)
    assert result.blocked and result.status_code is None
    assert result.error.startswith("blocked: refused to connect to 127.0.0.1")
