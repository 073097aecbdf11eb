"""GET /jobs, GET /jobs/{id}/events and `Prefer: wait=N` over HTTP, against the stack's own api
process (functions-framework under gunicorn, as deployed), the emulators and the simulators."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from .helpers import Client

pytestmark = pytest.mark.integration


def read_events(client: Client, job_id: str, last_event_id: int | None = None, timeout_s: float = 60) -> tuple[int, list[dict], str]:
    """(status, messages, raw text) of GET /jobs/{id}/events, read to its end as it streams."""
    headers = {**client.auth, **({"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {})}
    messages, raw, block = [], [], {}
    deadline = time.monotonic() + timeout_s
    with requests.get(f"{client.api}/jobs/{job_id}/events", headers=headers, stream=True, timeout=(5, 30)) as resp:
        if resp.status_code != 200:
            return resp.status_code, [], resp.text
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for line in resp.iter_lines(decode_unicode=True):
            assert time.monotonic() < deadline, "the stream did not end"
            raw.append(line)
            if not line:
                if "event" in block:
                    messages.append({"id": int(block["id"]), "event": block["event"], "data": json.loads(block["data"]),
                                     "at": time.monotonic()})
                block = {}
            elif not line.startswith(":") and ": " in line:
                key, value = line.split(": ", 1)
                block[key] = value
    return 200, messages, "\n".join(raw)


def test_listing_25_jobs_page_by_page_with_filters(stack):
    client = Client(stack, "other")
    since = requests.get(f"{client.api}/jobs?limit=1", headers=client.auth, timeout=10).json()
    start = since["jobs"][0]["created_at"] if since["jobs"] else "2000-01-01T00:00:00Z"
    prompts = [f"listing {n} [sim:op_error]" if n % 5 == 0 else f"listing {n}" for n in range(25)]
    ids = []
    for prompt in prompts:
        resp = client.submit({"prompt": prompt})
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    for job_id in ids:
        client.wait(job_id)

    def listed(query: str) -> list[dict]:
        out, cursor = [], None
        while True:
            url = f"{client.api}/jobs?created_after={start}&{query}" + (f"&cursor={cursor}" if cursor else "")
            resp = requests.get(url, headers=client.auth, timeout=10)
            assert resp.status_code == 200, resp.text
            out += resp.json()["jobs"]
            cursor = resp.json()["next_cursor"]
            if cursor is None:
                return out

    assert [j["id"] for j in listed("limit=10")] == ids[::-1]
    assert [j["id"] for j in listed("limit=7&order=asc")] == ids
    failed = listed("status=failed&limit=2")
    assert [j["id"] for j in failed] == [ids[n] for n in (20, 15, 10, 5, 0)]
    assert all(j["status"] == "failed" and j["error"]["code"] for j in failed)
    assert len(listed("status=succeeded&provider=litellm-gemini&limit=100")) == 20
    assert listed("provider=newapi") == []
    demo = Client(stack, "demo")
    theirs = requests.get(f"{demo.api}/jobs?created_after={start}&limit=100", headers=demo.auth, timeout=10).json()["jobs"]
    assert not set(ids) & {j["id"] for j in theirs}  # another client never sees them
    bad = requests.get(f"{client.api}/jobs?status=finished", headers=client.auth, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"


def test_events_stream_a_job_to_its_end_and_resume_without_repeats(client):
    # The first submit is refused (503) and retried: the stream opens while the job is still accepted.
    resp = client.submit({"prompt": f"events over http [sim:submit_503x1,key={uuid.uuid4().hex}]"})
    job_id = resp.json()["id"]
    t0 = time.monotonic()
    status, messages, raw = read_events(client, job_id)
    assert status == 200 and raw.startswith("retry: ")
    states = [m["event"] for m in messages if m["event"] != "job.progress"]
    assert states == ["job.accepted", "job.running", "job.downloading", "job.succeeded"], raw
    assert messages[-1]["data"]["outputs"] and messages[-1]["data"]["status"] == "succeeded"
    ids = [m["id"] for m in messages]
    assert ids == sorted(set(ids))
    assert messages[0]["at"] - t0 < 3  # streamed as it happens, not buffered to the end
    # Reconnect as EventSource does, having seen up to `running`: only what came after.
    running = next(m for m in messages if m["event"] == "job.running")
    status, resumed, _ = read_events(client, job_id, last_event_id=running["id"])
    assert status == 200 and [m["event"] for m in resumed] == ["job.succeeded"]
    assert all(m["id"] > running["id"] for m in resumed)
    status, after_end, _ = read_events(client, job_id, last_event_id=messages[-1]["id"])
    assert (status, after_end) == (204, [])


def test_prefer_wait_answers_when_a_quick_job_ends(client):
    t0 = time.monotonic()
    resp = client.submit({"prompt": "waited for [sim:duration=1]"}, headers={"Prefer": "wait=30"})
    took = time.monotonic() - t0
    assert resp.status_code == 202 and resp.headers["Preference-Applied"] == "wait=30"
    assert resp.json()["status"] == "succeeded" and resp.json()["outputs"]
    assert took < 25


def test_prefer_wait_gives_up_after_n_seconds_on_a_slow_job(client):
    job_id = client.submit({"prompt": "slow [sim:duration=120]"}).json()["id"]
    t0 = time.monotonic()
    resp = requests.get(f"{client.api}/jobs/{job_id}", headers={**client.auth, "Prefer": "wait=3"}, timeout=30)
    took = time.monotonic() - t0
    assert resp.status_code == 200 and resp.headers["Preference-Applied"] == "wait=3"
    assert resp.json()["status"] in ("accepted", "running")
    assert 3 <= took < 6
    capped = requests.get(f"{client.api}/jobs/{job_id}", headers={**client.auth, "Prefer": "wait=abc"}, timeout=30)
    assert "Preference-Applied" not in capped.headers
    assert client.cancel(job_id).status_code == 200
