"""Load: 300 jobs submitted at once on the local stack all end `succeeded`, each with its video,
its job.json and its webhook, none lost, none submitted or stored twice. The provider's
submission queue (5 a second, as configured for production) smooths the burst."""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .helpers import Client, gcs_bucket, landed_job_json

pytestmark = pytest.mark.integration

JOBS = 300


@pytest.mark.timeout(900)
def test_300_jobs_at_once_all_succeed_once_with_their_video_and_webhook(stack):
    client = Client(stack)
    run = uuid.uuid4().hex[:8]
    hook_url, hook_path = client.hook_url(f"load-{run}")
    prompts = [f"load {run} job {i:03d}" for i in range(JOBS)]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda p: client.submit({"prompt": p, "webhook_url": hook_url, "webhook_events": ["job.succeeded"]}), prompts))
    assert [a.status_code for a in answers] == [202] * JOBS, Counter(a.status_code for a in answers)
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == JOBS

    # Wait where a client looks (GET /jobs/{id}), asking again only about jobs still moving.
    pending, final = set(ids), {}
    deadline = time.monotonic() + 600
    with ThreadPoolExecutor(8) as pool:
        while pending:
            for job in pool.map(client.job, sorted(pending)):
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    final[job["id"]] = job
                    pending.discard(job["id"])
            assert time.monotonic() < deadline, f"{len(pending)} jobs still running after 600 s"
            if pending:
                time.sleep(2)
    assert Counter(j["status"] for j in final.values()) == Counter({"succeeded": JOBS})

    # Each provider generation was asked for exactly once.
    submits = requests.get(f"{client.sim}/_sim/calls", params={"kind": "submit"}, timeout=30).json()
    accepted = Counter(c["prompt"] for c in submits if c["status"] == 200 and c["prompt"] in set(prompts))
    assert accepted == Counter(dict.fromkeys(prompts, 1))

    # Exactly one video, its poster and one job.json per job.
    bucket = gcs_bucket(stack)
    for job_id in final:
        landed_job_json(bucket, job_id)
    names = {b.name for b in bucket.list_blobs(prefix="videos/")}
    for job_id, job in final.items():
        [output] = job["outputs"]
        assert output["uri"].endswith(f"/videos/{job_id}/0.mp4")
        assert {n for n in names if f"/{job_id}/" in n} == {f"videos/{job_id}/0.jpg", f"videos/{job_id}/0.mp4", f"videos/{job_id}/job.json"}

    # Every job's job.succeeded webhook arrived, all deliveries of one event under one id.
    deadline = time.monotonic() + 120
    while True:
        received = client.webhooks(hook_path, timeout_s=0)
        events = [(json.loads(r["body"]), {k.lower(): v for k, v in r["headers"].items()}["webhook-id"]) for r in received]
        ids_by_job: dict[str, set[str]] = {}
        for body, msg_id in events:
            assert body["type"] == "job.succeeded"
            ids_by_job.setdefault(body["data"]["id"], set()).add(msg_id)
        if set(ids_by_job) == set(ids) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(ids_by_job) == set(ids), f"{len(set(ids) - set(ids_by_job))} jobs without a webhook"
    assert all(len(v) == 1 for v in ids_by_job.values())
    assert len({next(iter(v)) for v in ids_by_job.values()}) == JOBS  # no two jobs share an event id
