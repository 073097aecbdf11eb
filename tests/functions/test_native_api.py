"""JobStore.list_jobs, JobStore.watch and the sweep's watch of a job's events over the real
Firestore emulator (its ordering, ties, cursors, listeners and transactions, which the fakes
only imitate), and GET /jobs, GET /jobs/{id}/events and
`Prefer: wait` through the functions-framework test client, on jobs the stack's functions run."""
from __future__ import annotations

import json
import queue
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from veorelay.core.errors import ApiError
from veorelay.core.job import JobStatus

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(function_env):
    from google.cloud import firestore

    from veorelay.gcp.store import JobStore

    return JobStore(firestore.Client(project=function_env["GOOGLE_CLOUD_PROJECT"]))


def a_job(client: str, tick: int, status: str = "accepted", provider: str = "gemini", **fields) -> dict:
    now = T0 + timedelta(seconds=tick)
    return {"id": uuid.uuid4().hex, "client_id": client, "status": status, "provider": provider, "model": "veo-3.1",
            "request": {"prompt": "p"}, "progress": {"percent": 0, "stage": "accepted"}, "outputs": [], "error": None,
            "created_at": now, "updated_at": now, "deadline_at": now + timedelta(hours=1), "timestamps": {}, **fields}


def pages(store, client: str, limit: int, **filters) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page, more = store.list_jobs(client, after=after, limit=limit, **filters)
        assert len(page) <= limit
        ids += [j["id"] for j in page]
        if not more:
            return ids
        after = page[-1]["id"]


def test_list_jobs_over_firestore_pages_filters_and_ownership(store):
    client = f"c{uuid.uuid4().hex[:12]}"
    jobs = [a_job(client, i // 3, status="running" if i % 4 == 0 else "accepted", provider="vertex" if i % 5 == 0 else "gemini")
            for i in range(25)]  # creation times tie in threes: the id decides
    jobs.append(a_job(client, 3, deleted_at=T0))
    jobs.append(a_job(f"x{client}", 2))
    for job in jobs:
        store.create(job)
    mine = list(jobs[:25])
    by_id = {j["id"]: j for j in mine}
    desc = [j["id"] for j in sorted(mine, key=lambda j: (j["created_at"], j["id"]), reverse=True)]
    assert pages(store, client, 10) == desc
    assert pages(store, client, 4, order="asc") == desc[::-1]
    assert pages(store, client, 100) == desc
    assert pages(store, client, 2, status="running") == [i for i in desc if by_id[i]["status"] == "running"]
    assert pages(store, client, 3, status="accepted", provider="vertex") == [
        i for i in desc if by_id[i]["status"] == "accepted" and by_id[i]["provider"] == "vertex"]
    low, high = T0 + timedelta(seconds=2), T0 + timedelta(seconds=6)
    assert pages(store, client, 5, created_after=low, created_before=high) == [i for i in desc if low < by_id[i]["created_at"] < high]
    assert pages(store, client, 5, provider="vertex", order="asc", created_after=T0) == [
        i for i in desc[::-1] if by_id[i]["provider"] == "vertex" and by_id[i]["created_at"] > T0]
    # A cursor that carries the position needs no read; one that names another client's job is refused.
    page, more = store.list_jobs(client, after=desc[9], after_created_at=by_id[desc[9]]["created_at"], limit=3)
    assert ([j["id"] for j in page], more) == (desc[10:13], True)
    with pytest.raises(ApiError):
        store.list_jobs(f"x{client}", after=desc[0])


def test_the_sweeps_watch_follows_the_jobs_moves_and_each_events_first_attempt(store):
    job = a_job(f"n{uuid.uuid4().hex[:12]}", 0, webhook={"url": "https://hooks.example/veo"})
    store.create(job)

    def watched() -> tuple[list[str] | None, bool]:
        doc = store.get(job["id"])
        assert doc is not None
        return doc.get("notify_events"), isinstance(doc.get("notify_due_at"), datetime)

    store.transition(job["id"], JobStatus.RUNNING)
    assert watched() == (["job.running"], True)
    store.transition(job["id"], JobStatus.FAILED)
    assert watched() == (["job.running", "job.failed"], True)
    # job.running's first attempt, recorded after the job failed, takes only itself off.
    assert store.append(job["id"], "deliveries", {"event": "job.running", "attempt": 1}, limit=10, attempt_of="job.running")
    assert watched() == (["job.failed"], True)
    assert store.append(job["id"], "deliveries", {"event": "job.failed", "attempt": 1}, limit=10, attempt_of="job.failed")
    assert watched() == (None, False)


def test_a_listener_on_the_emulator_reports_the_job_then_each_write(store):
    job = a_job(f"w{uuid.uuid4().hex[:12]}", 0)
    store.create(job)
    seen: queue.Queue = queue.Queue()
    stop = store.watch(job["id"], seen.put)
    try:
        assert seen.get(timeout=10)["status"] == "accepted"  # the job as it is, first
        store.transition(job["id"], JobStatus.RUNNING)
        assert seen.get(timeout=10)["status"] == "running"
        store.update(job["id"], [JobStatus.RUNNING], {"progress": {"percent": 50, "stage": "running"}})
        assert seen.get(timeout=10)["progress"]["percent"] == 50
    finally:
        stop()
    store.transition(job["id"], JobStatus.FAILED)
    time.sleep(0.5)
    assert seen.empty()  # stopped: nothing more arrives


def test_get_jobs_through_the_function(call):
    api = call("api")
    older = api.post("/jobs", json={"prompt": "listing through the function"}).get_json()
    newer = api.post("/jobs", json={"prompt": "listing through the function, again"}).get_json()
    body = api.get("/jobs?limit=1").get_json()
    assert [j["id"] for j in body["jobs"]] == [newer["id"]] and body["next_cursor"]
    second = api.get(f"/jobs?limit=1&cursor={body['next_cursor']}").get_json()
    assert [j["id"] for j in second["jobs"]] == [older["id"]]
    refused = api.get("/jobs?limit=500")
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "limit"


def sse_messages(response) -> list[dict]:
    out, block = [], {}
    for raw in response.response:
        for line in (raw.decode() if isinstance(raw, bytes) else raw).split("\n"):
            if not line:
                if "event" in block:
                    out.append({"id": int(block["id"]), "event": block["event"], "data": json.loads(block["data"])})
                block = {}
            elif not line.startswith(":") and ": " in line:
                key, value = line.split(": ", 1)
                block[key] = value
    return out


def test_events_and_wait_through_the_function(call):
    api = call("api")
    job = api.post("/jobs", json={"prompt": f"events [sim:submit_503x1,key={uuid.uuid4().hex}]"}).get_json()
    response = api.get(f"/jobs/{job['id']}/events", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    t0 = time.monotonic()
    messages = sse_messages(response)  # ends by itself after the terminal message
    assert time.monotonic() - t0 < 60
    states = [m["event"] for m in messages if m["event"] != "job.progress"]
    assert states == ["job.accepted", "job.running", "job.downloading", "job.succeeded"], messages
    assert [m["id"] for m in messages] == sorted({m["id"] for m in messages})
    waited = api.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=5"})
    assert waited.headers["Preference-Applied"] == "wait=5" and waited.get_json()["status"] == "succeeded"
