"""Budgets over the real Firestore emulator: 300 jobs at once across three clients with tight caps.
Admission (gcp/budgets.py) reserves each job's list price in one transaction with the job's
creation, so no client's spend ever passes its cap however the requests interleave, every job
admitted exists and ends, and a refused one leaves nothing behind. Then GET /usage over the API."""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from google.cloud import firestore

from veorelay.config import Settings
from veorelay.core.budget import BudgetExceeded
from veorelay.runtime import build_runtime
from veorelay.steps.accept import create_job

from .helpers import Client, unique_prompt

pytestmark = pytest.mark.integration

PER_CLIENT = 100
JOB_USD = 3.2  # veo-3.1-generate-preview on litellm-gemini, 720p, 8 s: 0.40 USD a second (functions/veorelay/catalog)
CAPS = {"daily": (10, {"daily_usd": 10 * JOB_USD}), "monthly": (7, {"monthly_usd": 7 * JOB_USD}),
        "inflight": (4, {"daily_usd": 4 * JOB_USD, "max_in_flight": 50})}


@pytest.mark.timeout(300)
def test_a_burst_never_overspends_a_cap_and_loses_no_admitted_job(stack_env):
    run = uuid.uuid4().hex[:8]
    clients = {f"burst-{kind}-{run}": (kind, allowed, caps) for kind, (allowed, caps) in CAPS.items()}
    env = {**stack_env.env, "VEO_BUDGETS": json.dumps({cid: caps for cid, (_, _, caps) in clients.items()})}
    rt = build_runtime(Settings.from_env(env))
    price = rt.providers["litellm-gemini"].capabilities.spec_for("veo-3.1-generate-preview").price_per_second["720p"]
    assert price * 8 == pytest.approx(JOB_USD)
    requests_ = [(cid, f"{cid} job {i:03d}") for cid in clients for i in range(PER_CLIENT)]

    def send(item: tuple[str, str]) -> tuple[str, str | None]:
        cid, prompt = item
        try:
            job, _ = create_job(rt, {"prompt": prompt, "provider": "litellm-gemini", "duration_seconds": 8}, client_id=cid)
        except BudgetExceeded as refused:
            assert refused.status == 429 and refused.cap in ("daily", "monthly")
            return cid, None
        return cid, job["id"]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, requests_))

    admitted = {cid: [job_id for c, job_id in answers if c == cid and job_id] for cid in clients}
    assert {cid: len(ids) for cid, ids in admitted.items()} == {cid: allowed for cid, (_, allowed, _) in clients.items()}
    assert Counter(c for c, job_id in answers if job_id is None) == {cid: PER_CLIENT - allowed for cid, (_, allowed, _) in clients.items()}

    db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    for cid, (kind, allowed, caps) in clients.items():
        stored = [snap.id for snap in db.collection("jobs").where(filter=firestore.FieldFilter("client_id", "==", cid)).stream()]
        assert sorted(stored) == sorted(admitted[cid]), f"{cid}: a refused request left a job, or an admitted one is missing"
        state = db.collection("budgets").document(cid).get().to_dict()
        spent = state["month_usd"] if kind == "monthly" else state["day_usd"]
        assert spent == pytest.approx(allowed * JOB_USD) and spent <= next(iter(caps.values())) + 1e-6

    # every admitted job runs to its end on the stack, and its end settles the budget (in flight back to 0)
    deadline = time.monotonic() + 180
    pending = {job_id for ids in admitted.values() for job_id in ids}
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = rt.store.get(job_id)
            if job and job["status"] in ("succeeded", "failed", "cancelled") and job.get("settled_at"):
                assert job["status"] == "succeeded", job.get("error")
                pending.discard(job_id)
        time.sleep(1)
    assert not pending, f"{len(pending)} admitted jobs did not end and settle"
    for cid, (kind, allowed, _) in clients.items():
        state = db.collection("budgets").document(cid).get().to_dict()
        assert state["in_flight"] == 0
        assert (state["month_usd"] if kind == "monthly" else state["day_usd"]) == pytest.approx(allowed * JOB_USD)  # billed: kept


def test_usage_over_the_api_shows_the_clients_spend_by_model_and_provider(stack):
    client = Client(stack, "other")
    before = client_usage(client)
    job_id = client.submit({"prompt": unique_prompt("usage"), "provider": "litellm-gemini"}).json()["id"]
    job = client.wait(job_id)
    assert job["status"] == "succeeded" and job["cost"]["billed"] is True and job["cost"]["estimated_usd"] > 0

    deadline = time.monotonic() + 30
    while (after := client_usage(client))["total"]["jobs"] == before["total"]["jobs"] and time.monotonic() < deadline:
        time.sleep(0.5)

    assert after["total"]["jobs"] == before["total"]["jobs"] + 1
    assert after["total"]["usd"] == pytest.approx(before["total"]["usd"] + job["cost"]["estimated_usd"])
    assert after["total"]["by_provider"]["litellm-gemini"]["jobs"] >= 1
    assert after["total"]["by_model"][job["model"]]["billed_jobs"] >= 1
    assert after["days"][-1]["day"] == after["to"] and after["currency"] == "USD"
    bad = requests.get(f"{client.api}/usage?from=2026-13-01", headers=client.auth, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "from"


def client_usage(client: Client) -> dict:
    resp = requests.get(f"{client.api}/usage", headers=client.auth, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()
