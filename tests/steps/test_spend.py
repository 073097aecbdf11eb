"""Cost and budgets (core/cost.py, core/budget.py, steps/spend.py): every job carries its list-price
estimate and, once ended, whether it was billed; a client's caps are reserved at admission and
settled at the end, and a job that would break one is refused with 429 before anything is stored."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from veorelay.config import shipped_catalog
from veorelay.core import budget
from veorelay.core.budget import BudgetExceeded, BudgetLimits
from veorelay.core.capabilities import Capabilities
from veorelay.core.errors import ErrorCode, PermanentError
from veorelay.core.job import JobStatus
from veorelay.core.views import job_view
from veorelay.steps.accept import create_job
from veorelay.steps.cancel import cancel_job
from veorelay.steps.spend import usage_report

from .driver import drain, run_named
from .fake_providers import FAKE_CAPABILITIES, FakeProvider, failed, mp4, rai_filtered, succeeded
from .fakes import make_runtime
from .helpers import PROMPT, store_of, tasks_of

GEMINI = shipped_catalog().provider("gemini")
PRICED = Capabilities.from_catalog(GEMINI, options=FAKE_CAPABILITIES.options | {"resolution", "generate_audio"})
PRICE_720P = GEMINI.get("veo-3.1-generate-preview").price_per_second["720p"]


def priced_runtime(budgets: dict | None = None):
    env = {"VEO_BUDGETS": json.dumps(budgets)} if budgets else {}
    return make_runtime(env, providers=[FakeProvider("fake", PRICED)])


def submit(rt, client="acme", **fields):
    job, created = create_job(rt, {"prompt": PROMPT, "provider": "fake", "duration_seconds": 8, **fields}, client_id=client)
    assert created
    return job["id"]


def finish(rt, job_id, outcome="succeeded"):
    provider = rt.providers["fake"]
    run_named(rt, f"{job_id}-submit")
    url = f"https://videos.fake/{job_id}/0.mp4"
    provider.serve(url, mp4(5000))
    provider.checks.set({"succeeded": succeeded(url), "failed": failed(), "rai": rai_filtered()}[outcome])
    drain(rt)
    return store_of(rt).job(job_id)


def test_a_job_carries_its_list_price_and_is_billed_once_it_succeeded():
    rt = priced_runtime()
    job_id = submit(rt, resolution="720p")

    view = job_view(store_of(rt).job(job_id))
    assert view["cost"]["estimated_usd"] == pytest.approx(8 * PRICE_720P)
    assert view["cost"]["basis"] == {"model": "veo-3.1-generate-preview", "resolution": "720p", "seconds": 8, "samples": 1,
                                     "audio": True, "price_per_second": PRICE_720P}
    assert view["cost"]["billed"] is None  # not ended

    done = finish(rt, job_id)
    assert done["status"] == JobStatus.SUCCEEDED and job_view(done)["cost"]["billed"] is True


def test_samples_and_resolution_change_the_estimate():
    rt = priced_runtime()
    one = job_view(store_of(rt).job(submit(rt, resolution="720p")))["cost"]["estimated_usd"]
    two = job_view(store_of(rt).job(submit(rt, resolution="720p", sample_count=2)))["cost"]["estimated_usd"]
    four_k = job_view(store_of(rt).job(submit(rt, resolution="4k")))["cost"]["estimated_usd"]
    assert two == pytest.approx(2 * one) and four_k > one


@pytest.mark.parametrize("outcome, billed", [("rai", False), ("failed", False)])
def test_a_filtered_or_provider_failed_generation_is_not_billed(outcome, billed):
    rt = priced_runtime()
    job = finish(rt, submit(rt), outcome)
    assert job["status"] == JobStatus.FAILED and job_view(job)["cost"]["billed"] is billed


def test_a_job_no_provider_accepted_is_not_billed_and_one_cancelled_while_generating_is():
    rt = priced_runtime()
    refused = submit(rt)
    rt.providers["fake"].submits.set(PermanentError(ErrorCode.INVALID_REQUEST, "no"))
    run_named(rt, f"{refused}-submit")
    assert job_view(store_of(rt).job(refused))["cost"]["billed"] is False

    rt.providers["fake"].submits.set({"operation": "op"})
    generating = submit(rt)
    run_named(rt, f"{generating}-submit")
    cancel_job(rt, generating)
    assert job_view(store_of(rt).job(generating))["cost"]["billed"] is True  # Veo has no cancel: it goes on


def test_a_job_past_the_daily_cap_is_refused_with_429_and_nothing_is_stored():
    cap = 8 * PRICE_720P * 2 + 0.01  # room for two 8 s 720p jobs
    rt = priced_runtime({"acme": {"daily_usd": cap}})
    submit(rt, resolution="720p")
    submit(rt, resolution="720p")
    before = sorted(store_of(rt).ids())

    with pytest.raises(BudgetExceeded) as refused:
        create_job(rt, {"prompt": PROMPT, "provider": "fake", "duration_seconds": 8, "resolution": "720p"}, client_id="acme")

    assert refused.value.status == 429 and refused.value.code == ErrorCode.BUDGET_EXCEEDED and refused.value.cap == "daily"
    assert refused.value.left == pytest.approx(0.01, abs=1e-6)
    now = datetime.now(UTC)
    assert refused.value.resets == datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    assert "0.01 USD left" in refused.value.message
    assert sorted(store_of(rt).ids()) == before and len(tasks_of(rt).pending) == 2
    # another client has its own budget
    submit(rt, client="other", resolution="720p")


def test_the_in_flight_cap_frees_when_a_job_ends():
    rt = priced_runtime({"default": {"max_in_flight": 1}})
    first = submit(rt)
    with pytest.raises(BudgetExceeded) as refused:
        submit(rt)
    assert refused.value.cap == "in_flight" and refused.value.resets is None

    finish(rt, first)
    submit(rt)  # the slot is free again


def test_a_job_that_was_not_billed_gives_its_reservation_back_and_a_billed_one_keeps_it():
    rt = priced_runtime({"acme": {"monthly_usd": 1000}})
    ledger = rt.budgets
    billed = finish(rt, submit(rt, resolution="720p"))
    assert ledger.state("acme")["month_usd"] == pytest.approx(8 * PRICE_720P) and ledger.state("acme")["in_flight"] == 0

    filtered = finish(rt, submit(rt, resolution="720p"), "rai")
    assert ledger.state("acme")["month_usd"] == pytest.approx(8 * PRICE_720P)
    assert billed["settled_at"] and filtered["settled_at"]


def test_settling_happens_once_whatever_runs_it_again():
    rt = priced_runtime({"acme": {"monthly_usd": 1000}})
    job = finish(rt, submit(rt))
    month = rt.budgets.state("acme")["month_usd"]

    assert rt.budgets.settle(job["id"]) is False
    assert rt.budgets.state("acme")["month_usd"] == month
    assert usage_report(rt, "acme", None, None)["total"]["jobs"] == 1


def test_an_idempotent_replay_reserves_nothing_twice():
    rt = priced_runtime({"acme": {"daily_usd": 100}})
    body = {"prompt": PROMPT, "provider": "fake", "duration_seconds": 8}
    create_job(rt, body, client_id="acme", idempotency_key="k-1")
    spent = rt.budgets.state("acme")["day_usd"]
    _, created = create_job(rt, body, client_id="acme", idempotency_key="k-1")
    assert created is False and rt.budgets.state("acme")["day_usd"] == spent and rt.budgets.state("acme")["in_flight"] == 1


def test_usage_counts_spend_and_jobs_by_model_and_provider():
    rt = priced_runtime()
    finish(rt, submit(rt, resolution="720p"))
    finish(rt, submit(rt, resolution="720p"), "rai")

    report = usage_report(rt, "acme", None, None)

    assert report["total"]["jobs"] == 2 and report["total"]["billed_jobs"] == 1
    assert report["total"]["usd"] == pytest.approx(8 * PRICE_720P)
    assert report["total"]["by_model"]["veo-3.1-generate-preview"]["jobs"] == 2
    assert report["total"]["by_provider"]["fake"] == {"jobs": 2, "billed_jobs": 1, "usd": pytest.approx(8 * PRICE_720P)}
    (day,) = report["days"]
    assert day["day"] == datetime.now(UTC).date().isoformat() and day["by_status"] == {"succeeded": 1, "failed": 1}
    assert usage_report(rt, "someone-else", None, None)["total"]["jobs"] == 0


def test_budget_arithmetic_rolls_over_days_and_months():
    limits = BudgetLimits(daily_usd=10, monthly_usd=15, max_in_flight=None)
    late = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    state, used = budget.admit(None, late, 8.0, limits)
    assert used == pytest.approx(0.8)
    with pytest.raises(BudgetExceeded) as daily:
        budget.admit(state, late, 4.0, limits)
    assert daily.value.cap == "daily" and daily.value.resets == datetime(2027, 1, 1, tzinfo=UTC)
    next_day = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)  # a new day and a new month: both start from zero
    state, _ = budget.admit(state, next_day, 9.0, limits)
    assert (state["day"], state["day_usd"], state["month"], state["month_usd"], state["in_flight"]) == ("2027-01-01", 9.0, "2027-01", 9.0, 2)
    # a December reservation settled in January leaves January's spend alone
    settled = budget.settle(state, next_day, budget.Reservation(usd=8.0, day="2026-12-31", month="2026-12"), 0.0)
    assert settled["day_usd"] == 9.0 and settled["in_flight"] == 1


@pytest.mark.parametrize("raw, problem", [
    ('{"acme": {"daily": 5}}', "acme: must be an object"),
    ('{"acme": {"daily_usd": -1}}', "acme.daily_usd"),
    ('{"acme": {"max_in_flight": 1.5}}', "acme.max_in_flight"),
    ("[1]", "must be a JSON object"),
])
def test_a_bad_budget_setting_fails_at_start_naming_it(raw, problem):
    from veorelay.config import ConfigError

    with pytest.raises(ConfigError) as bad:
        make_runtime({"VEO_BUDGETS": raw})
    assert "VEO_BUDGETS" in str(bad.value) and problem in str(bad.value)


def test_a_job_whose_settling_failed_is_settled_by_the_sweep(monkeypatch):
    from veorelay.core.errors import TransientError
    from veorelay.steps.sweep import sweep

    rt = priced_runtime({"acme": {"max_in_flight": 1}})
    ledger = rt.budgets
    original = ledger.settle
    monkeypatch.setattr(ledger, "settle", lambda job_id: (_ for _ in ()).throw(TransientError("unavailable", "Firestore down")))
    job = finish(rt, submit(rt))
    assert job["status"] == JobStatus.SUCCEEDED and "settled_at" not in job and ledger.state("acme")["in_flight"] == 1

    monkeypatch.setattr(ledger, "settle", original)
    assert sweep(rt).settled == []  # not due yet: its own end may still settle it
    report = sweep(rt, now=datetime.now(UTC) + timedelta(minutes=6))

    assert report.settled == [job["id"]] and ledger.state("acme")["in_flight"] == 0
    assert store_of(rt).job(job["id"])["settle_due_at"] is None
    assert sweep(rt, now=datetime.now(UTC) + timedelta(minutes=7)).settled == []  # once
