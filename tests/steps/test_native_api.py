"""GET /jobs, GET /jobs/{id}/events and `Prefer: wait=N` through the public API's own handler
(edges/api.handle with a Flask test request) over the fakes: what a client sees, for two
clients with their own API keys."""
from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import flask
import pytest

from veorelay.core.api_keys import hash_key
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError
from veorelay.core.job import JobStatus
from veorelay.edges import events
from veorelay.edges.api import handle
from veorelay.edges.prefer import wait_seconds
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job
from veorelay.steps.watch import JobWatch

from .fake_providers import FakeProvider
from .fakes import FakeStore, make_runtime
from .helpers import PROMPT, store_of

KEYS = {"alice": "key-of-alice-0123456789", "bob": "key-of-bob-0123456789"}
_APP = flask.Flask("veo-relay-native-api-tests")


def ticking() -> Any:
    """A store clock that moves at least 1 µs a call: every write a new event id."""
    last = [utcnow()]

    def now() -> datetime:
        last[0] = max(utcnow(), last[0] + timedelta(microseconds=1))
        return last[0]

    return now


@pytest.fixture
def rt() -> Runtime:
    env = {"VEO_API_KEYS": json.dumps({c: [hash_key(k)] for c, k in KEYS.items()})}
    return make_runtime(env=env, providers=[FakeProvider(), FakeProvider("other")], store=FakeStore(clock=ticking()))


def call(rt: Runtime, path: str, client: str = "alice", method: str = "GET", headers: dict[str, str] | None = None,
         **kwargs: Any) -> flask.Response:
    with _APP.test_request_context(path, method=method, headers={"Authorization": f"Bearer {KEYS[client]}", **(headers or {})},
                                   **kwargs):
        return handle(flask.request, rt)


def get(rt: Runtime, path: str, client: str = "alice", **kwargs: Any) -> tuple[int, Any]:
    response = call(rt, path, client, **kwargs)
    return response.status_code, json.loads(response.get_data())


def new_job(rt: Runtime, client: str = "alice", provider: str = "fake") -> str:
    job, created = create_job(rt, {"prompt": PROMPT, "provider": provider}, client_id=client)
    assert created
    return job["id"]


def listed(rt: Runtime, query: str = "", client: str = "alice") -> list[str]:
    """Every job id GET /jobs gives, page after page."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        sep = "&" if query else ""
        status, page = get(rt, f"/jobs?{query}" + (f"{sep}cursor={cursor}" if cursor else ""), client)
        assert status == 200, page
        ids += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("the listing never ended")


# ---------------------------------------------------------------------------- GET /jobs

def test_listing_pages_through_the_clients_jobs_newest_first(rt):
    ids = [new_job(rt) for _ in range(25)]
    status, first = get(rt, "/jobs?limit=10")
    assert status == 200 and [j["id"] for j in first["jobs"]] == ids[::-1][:10]
    assert first["jobs"][0]["status"] == "accepted" and first["jobs"][0]["links"]["self"] == f"/jobs/{ids[-1]}"
    assert listed(rt, "limit=10") == ids[::-1]
    assert listed(rt, "limit=7&order=asc") == ids
    status, default = get(rt, "/jobs")
    assert len(default["jobs"]) == 20 and default["next_cursor"]


def test_a_client_lists_only_its_own_jobs_and_never_a_deleted_one(rt):
    mine = [new_job(rt) for _ in range(3)]
    theirs = [new_job(rt, "bob") for _ in range(2)]
    store_of(rt).edit(mine[1], deleted_at=utcnow())
    assert listed(rt) == [mine[2], mine[0]]
    assert listed(rt, client="bob") == theirs[::-1]
    assert listed(rt, "limit=1") == [mine[2], mine[0]]  # a deleted job in the middle of a page


def test_filters_status_provider_and_creation_time(rt):
    a, b, c = new_job(rt), new_job(rt, provider="other"), new_job(rt)
    store_of(rt).transition(c, JobStatus.RUNNING)
    assert listed(rt, "status=running") == [c]
    assert listed(rt, "status=accepted") == [b, a]
    assert listed(rt, "provider=other") == [b]
    assert listed(rt, "provider=fake&status=accepted") == [a]
    t_b = store_of(rt).job(b)["created_at"]
    stamp = t_b.isoformat().replace("+00:00", "Z")
    assert listed(rt, f"created_after={stamp}") == [c]
    assert listed(rt, f"created_before={stamp}") == [a]
    assert listed(rt, "created_after=2000-01-01T00:00:00%2B00:00&created_before=2000-01-02T00:00:00Z") == []


def test_pages_stay_stable_while_jobs_are_added(rt):
    old = [new_job(rt) for _ in range(6)]
    _, first = get(rt, "/jobs?limit=3")
    newer = [new_job(rt) for _ in range(4)]
    _, second = get(rt, f"/jobs?limit=3&cursor={first['next_cursor']}")
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == old[::-1]
    assert second["next_cursor"] is None
    assert listed(rt, "limit=4")[:4] == newer[::-1]


@pytest.mark.badinput
@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("limit=-1", "limit"), ("limit=1.5", "limit"),
    ("status=done", "status"), ("provider=nope", "provider"), ("order=newest", "order"),
    ("created_after=yesterday", "created_after"), ("created_after=2026-01-01T00:00:00", "created_after"),
    ("created_before=2026-13-01T00:00:00Z", "created_before"), ("created_before=1700000000", "created_before"),
    ("created_after=0001-01-01T00:00:00%2B01:00", "created_after"), ("created_before=9999-12-31T23:59:59-01:00", "created_before"),
    ("limit=%EF%BC%91", "limit"), ("status=", "status"),
    ("cursor=abc", "cursor"), ("cursor=", "cursor"), ("page=2", "page"), ("limit=1&limit=2", "limit"),
])
def test_bad_query_parameters_are_a_400_naming_the_parameter(rt, query, field):
    status, body = get(rt, f"/jobs?{query}")
    assert status == 400, body
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_request", field)
    assert body["error"]["message"]


def test_a_cursor_is_refused_when_changed_or_for_another_client_or_other_filters(rt):
    for _ in range(3):
        new_job(rt)
    _, page = get(rt, "/jobs?limit=1&status=accepted")
    cursor = page["next_cursor"]
    payload, digest = cursor.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["f"] = {}  # the same position with the filter dropped
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + digest
    for path, client in [(f"/jobs?cursor={forged}", "alice"), (f"/jobs?cursor={cursor}", "bob"),
                         (f"/jobs?cursor={cursor[:-2]}", "alice"), (f"/jobs?cursor={cursor}&status=running", "alice"),
                         (f"/jobs?cursor={cursor}&order=asc", "alice")]:
        status, body = get(rt, path, client)
        assert (status, body["error"]["field"]) == (400, "cursor"), (path, client, body)
    # The filters left out of a request with a cursor are the cursor's own.
    status, body = get(rt, f"/jobs?limit=1&cursor={cursor}")
    assert status == 200 and len(body["jobs"]) == 1


def test_the_store_refuses_an_after_that_is_no_job_of_the_client(rt):
    job_id = new_job(rt)
    with pytest.raises(ApiError) as err:
        rt.store.list_jobs("bob", after=job_id)
    assert err.value.field == "after"
    with pytest.raises(ValueError):
        rt.store.list_jobs("alice", limit=101)
    assert rt.store.list_jobs("alice", after=job_id) == ([], False)


# ---------------------------------------------------------------------------- events

def chunks(response: flask.Response) -> Iterator[str]:
    for chunk in response.response:
        yield chunk.decode() if isinstance(chunk, bytes) else chunk


def parsed(stream: list[str]) -> list[dict[str, Any]]:
    """The messages of an SSE stream (comments and retry lines apart)."""
    out = []
    for block in "".join(stream).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":") and ": " in line)
        if "event" in fields:
            out.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return out


def run_job(rt: Runtime, job_id: str) -> None:
    store = rt.store
    store.transition(job_id, JobStatus.RUNNING)
    store.update(job_id, [JobStatus.RUNNING], {"progress": {"percent": 40, "stage": "running"}})
    store.update(job_id, [JobStatus.RUNNING], {"submit_attempts": 1})  # no message: neither status nor progress
    store.transition(job_id, JobStatus.DOWNLOADING)
    store.transition(job_id, JobStatus.SUCCEEDED)


def test_events_tell_every_state_and_progress_change_and_end_after_the_terminal_one(rt):
    job_id = new_job(rt)
    response = call(rt, f"/jobs/{job_id}/events")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    run_job(rt, job_id)
    stream = list(chunks(response))  # ends by itself after job.succeeded
    messages = parsed(stream)
    assert [m["event"] for m in messages] == ["job.accepted", "job.running", "job.progress", "job.downloading", "job.succeeded"]
    assert messages[2]["data"]["progress"] == {"percent": 40, "stage": "running"}
    assert [m["id"] for m in messages] == sorted({m["id"] for m in messages})
    assert messages[-1]["id"] == events.event_id(store_of(rt).job(job_id))
    assert stream[0].startswith("retry: ")
    assert store_of(rt).watching(job_id) == 0  # the listener is stopped


def test_resuming_with_last_event_id_skips_what_the_client_has(rt):
    job_id = new_job(rt)
    response = call(rt, f"/jobs/{job_id}/events")
    run_job(rt, job_id)
    messages = parsed(list(chunks(response)))
    seen = messages[2]["id"]  # the client had job.progress, then lost the connection
    resumed = parsed(list(chunks(call(rt, f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(seen)}))))
    assert [m["event"] for m in resumed] == ["job.succeeded"]  # the job as it is now, nothing older
    done = call(rt, f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(messages[-1]["id"])})
    assert (done.status_code, done.get_data()) == (204, b"")  # EventSource stops reconnecting
    fresh = parsed(list(chunks(call(rt, f"/jobs/{job_id}/events", headers={"Last-Event-ID": "not-an-id"}))))
    assert [m["event"] for m in fresh] == ["job.succeeded"]


def test_a_resume_of_a_running_job_starts_with_changes_past_the_last_id(rt):
    job_id = new_job(rt)
    rt.store.transition(job_id, JobStatus.RUNNING)
    seen = events.event_id(store_of(rt).job(job_id))
    response = call(rt, f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(seen)})
    rt.store.update(job_id, [JobStatus.RUNNING], {"progress": {"percent": 70, "stage": "running"}})
    rt.store.transition(job_id, JobStatus.FAILED, {"error": {"code": "provider_error", "message": "boom"}})
    assert [m["event"] for m in parsed(list(chunks(response)))] == ["job.progress", "job.failed"]


def test_a_quiet_stream_sends_keep_alives_and_ends_in_time_with_a_retry_hint(rt):
    job_id = new_job(rt)
    watch = JobWatch(rt, job_id)
    t0 = time.monotonic()
    stream = list(events.stream(watch, store_of(rt).job(job_id), None, max_s=0.5, keep_alive_s=0.12))
    took = time.monotonic() - t0
    assert 0.45 <= took < 2.0
    text = "".join(stream)
    assert text.count(": keep-alive\n\n") >= 3
    assert [m["event"] for m in parsed(stream)] == ["job.accepted"]
    assert stream[-1].startswith(f"retry: {events.RECONNECT_MS}\n")
    assert store_of(rt).watching(job_id) == 0


def test_the_stream_is_bounded_by_veo_events_max_seconds():
    env = {"VEO_API_KEYS": json.dumps({c: [hash_key(k)] for c, k in KEYS.items()}), "VEO_EVENTS_MAX_SECONDS": "0.4"}
    rt = make_runtime(env=env, providers=[FakeProvider()], store=FakeStore(clock=ticking()))
    job_id = new_job(rt)
    t0 = time.monotonic()
    stream = list(chunks(call(rt, f"/jobs/{job_id}/events")))
    assert 0.35 <= time.monotonic() - t0 < 2.0
    assert [m["event"] for m in parsed(stream)] == ["job.accepted"] and stream[-1].startswith("retry: ")


def test_a_client_that_leaves_stops_the_listener(rt):
    job_id = new_job(rt)
    response = call(rt, f"/jobs/{job_id}/events")
    iterator = iter(response.response)
    next(iterator), next(iterator)  # retry hint, job.accepted
    assert store_of(rt).watching(job_id) == 1
    response.close()  # what the WSGI server does when the connection is gone
    assert store_of(rt).watching(job_id) == 0


def test_events_of_another_clients_job_are_a_404(rt):
    job_id = new_job(rt, "bob")
    status, body = get(rt, f"/jobs/{job_id}/events")
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert get(rt, f"/jobs/{job_id}/events", method="POST")[0] == 405


# ---------------------------------------------------------------------------- Prefer: wait

@pytest.mark.parametrize("headers,seconds", [
    ([], None), (["wait=5"], 5), (["WAIT = 5"], 5), (['wait="7"'], 7), (["respond-async, wait=10"], 10),
    (["return=minimal", "wait=3"], 3), (["wait=600"], 60), (["wait=0"], None), (["wait=-1"], None),
    (["wait=soon"], None), (["wait"], None), (["wait=2.5"], None), (["wait=5;x=y"], 5), (["wait=1, wait=9"], 1),
])
def test_prefer_wait_is_read_as_rfc_7240_says(headers, seconds):
    assert wait_seconds(headers) == seconds


def test_prefer_wait_answers_as_soon_as_the_job_ends(rt):
    job_id = new_job(rt)
    threading.Timer(0.3, run_job, (rt, job_id)).start()
    t0 = time.monotonic()
    response = call(rt, f"/jobs/{job_id}", headers={"Prefer": "wait=10"})
    took = time.monotonic() - t0
    assert response.status_code == 200 and json.loads(response.get_data())["status"] == "succeeded"
    assert response.headers["Preference-Applied"] == "wait=10"
    assert 0.25 <= took < 3
    assert store_of(rt).watching(job_id) == 0


def test_prefer_wait_gives_the_job_as_it_is_after_n_seconds(rt):
    job_id = new_job(rt)
    threading.Timer(0.2, rt.store.transition, (job_id, JobStatus.RUNNING)).start()
    t0 = time.monotonic()
    response = call(rt, f"/jobs/{job_id}", headers={"Prefer": "wait=1"})
    took = time.monotonic() - t0
    assert json.loads(response.get_data())["status"] == "running"  # the latest, not the one first read
    assert response.headers["Preference-Applied"] == "wait=1"
    assert 1.0 <= took < 2.5


def test_prefer_wait_on_post_jobs_and_preferences_ignored(rt):
    body = json.dumps({"prompt": PROMPT, "provider": "fake"})
    t0 = time.monotonic()
    response = call(rt, "/jobs", method="POST", data=body, content_type="application/json", headers={"Prefer": "wait=1"})
    assert response.status_code == 202 and json.loads(response.get_data())["status"] == "accepted"
    assert response.headers["Preference-Applied"] == "wait=1" and time.monotonic() - t0 >= 1.0
    job_id = json.loads(response.get_data())["id"]
    for prefer in ("wait=zero", "wait=0", "handling=strict"):
        t0 = time.monotonic()
        ignored = call(rt, f"/jobs/{job_id}", headers={"Prefer": prefer})
        assert ignored.status_code == 200 and "Preference-Applied" not in ignored.headers
        assert time.monotonic() - t0 < 0.5
    rt.store.transition(job_id, JobStatus.CANCELLED)
    capped = call(rt, f"/jobs/{job_id}", headers={"Prefer": "wait=3600"})  # ended: answered at once
    assert capped.headers["Preference-Applied"] == "wait=60"


def test_a_job_deleted_meanwhile_ends_its_stream_and_its_wait(rt):
    job_id = new_job(rt)
    response = call(rt, f"/jobs/{job_id}/events")
    threading.Timer(0.2, rt.store.update, (job_id, [JobStatus.ACCEPTED], {"deleted_at": utcnow()})).start()
    t0 = time.monotonic()
    assert [m["event"] for m in parsed(list(chunks(response)))] == ["job.accepted"]
    assert time.monotonic() - t0 < 2
    other = new_job(rt)
    threading.Timer(0.2, rt.store.update, (other, [JobStatus.ACCEPTED], {"deleted_at": utcnow()})).start()
    status, body = get(rt, f"/jobs/{other}", headers={"Prefer": "wait=10"})
    assert (status, body["error"]["code"]) == (404, "not_found")
