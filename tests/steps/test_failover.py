"""Failover (steps/failover.py, core/failover.py): a job whose submission is refused before any
provider accepted it moves to the next provider of its chain that can honour it, each attempt on
the job; never once a provider accepted it, never on a safety filter or a timeout."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, PermanentError, TransientError
from veorelay.core.failover import fallback_chain, model_family
from veorelay.core.job import JobStatus
from veorelay.core.views import job_view
from veorelay.steps.accept import create_job
from veorelay.steps.submit import submit_job

from .driver import drain, run_named
from .fake_providers import FAKE_CAPABILITIES, FakeProvider, failed, mp4, refused, succeeded, throttled, unavailable
from .fakes import make_runtime
from .helpers import PROMPT, store_of, tasks_of

pytestmark = pytest.mark.faults


@pytest.fixture
def first() -> FakeProvider:
    return FakeProvider("first")


@pytest.fixture
def second() -> FakeProvider:
    return FakeProvider("second")


@pytest.fixture
def third() -> FakeProvider:
    return FakeProvider("third", replace(FAKE_CAPABILITIES, options=FAKE_CAPABILITIES.options - {"negative_prompt"}))


@pytest.fixture
def rt(first, second, third):
    return make_runtime({"VEO_FAILOVER_UNAVAILABLE_ATTEMPTS": "2", "VEO_FAILOVER_THROTTLED_SECONDS": "60"},
                        providers=[first, second, third])


def job_on(rt, *fallbacks: str, **fields) -> str:
    job, created = create_job(rt, {"prompt": PROMPT, "provider": "first", "fallback_providers": list(fallbacks), **fields})
    assert created
    return job["id"]


def attempts(rt, job_id):
    return [(a["provider"], a["model"], a["error_code"]) for a in store_of(rt).job(job_id).get("attempts", [])]


def test_access_denied_moves_the_job_to_the_next_provider_at_once(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(refused(ErrorCode.ACCESS_DENIED, "the key was revoked"))

    run_named(rt, f"{job_id}-submit")

    job = store_of(rt).job(job_id)
    assert (job["status"], job["provider"], job["model"]) == (JobStatus.ACCEPTED, "second", "veo-fake-1")
    assert attempts(rt, job_id) == [("first", "veo-fake-1", "access_denied")]
    assert tasks_of(rt).pending_names() == [f"{job_id}-h1-submit"]
    assert tasks_of(rt).pending[0].queue == rt.settings.queues.submit("second")

    run_named(rt, f"{job_id}-h1-submit")
    assert store_of(rt).job(job_id)["status"] == JobStatus.RUNNING
    assert (first.count("submit"), second.count("submit")) == (1, 1)
    view = job_view(store_of(rt).job(job_id))
    assert view["provider"] == "second" and view["attempts"][0]["provider"] == "first" and view["attempts"][0]["at"].endswith("Z")


def test_the_job_then_runs_to_the_end_on_the_provider_that_took_it(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(refused(ErrorCode.ACCESS_DENIED, "denied"))
    url = f"https://videos.fake/{job_id}/0.mp4"
    second.serve(url, mp4(6000))
    second.checks.set(succeeded(url))

    drain(rt)

    job = store_of(rt).job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and job["provider"] == "second" and len(job["outputs"]) == 1
    assert first.count("check") == 0 and first.count("open_output") == 0


def test_a_throttled_submission_waits_its_bounded_time_then_moves(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(throttled(30))

    run_named(rt, f"{job_id}-submit")  # throttled: waits on a task of its own
    assert tasks_of(rt).pending_names() == [f"{job_id}-submit-1"] and store_of(rt).job(job_id)["provider"] == "first"
    store_of(rt).edit(job_id, throttled_since=utcnow() - timedelta(seconds=61))  # VEO_FAILOVER_THROTTLED_SECONDS=60 ago

    run_named(rt, f"{job_id}-submit-1")

    assert store_of(rt).job(job_id)["provider"] == "second"
    assert attempts(rt, job_id) == [("first", "veo-fake-1", "quota_exceeded")]
    assert tasks_of(rt).pending_names() == [f"{job_id}-h1-submit"]


def test_a_throttled_job_without_a_fallback_keeps_waiting_on_its_provider(rt, first):
    job, _ = create_job(rt, {"prompt": PROMPT, "provider": "first"})
    first.submits.set(throttled(30))
    run_named(rt, f"{job['id']}-submit")
    store_of(rt).edit(job["id"], throttled_since=utcnow() - timedelta(hours=1))

    run_named(rt, f"{job['id']}-submit-1")

    assert store_of(rt).job(job["id"])["provider"] == "first" and tasks_of(rt).pending_names() == [f"{job['id']}-submit-2"]


def test_an_unreachable_provider_is_left_after_its_attempts(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(unavailable())

    with pytest.raises(TransientError):  # attempt 1: the queue retries
        run_named(rt, f"{job_id}-submit")
    assert store_of(rt).job(job_id)["submit_failures"] == 1 and store_of(rt).job(job_id)["provider"] == "first"

    submit_job(rt, job_id)  # the queue's retry: attempt 2 of VEO_FAILOVER_UNAVAILABLE_ATTEMPTS=2

    assert store_of(rt).job(job_id)["provider"] == "second"
    assert attempts(rt, job_id) == [("first", "veo-fake-1", "provider_unavailable")]


@pytest.mark.parametrize("refusal", [
    PermanentError(ErrorCode.RAI_FILTERED, "the prompt was blocked by the safety filter"),
    refused(ErrorCode.INVALID_REQUEST, "bad request (400)"),
], ids=["safety-filter", "invalid-request"])
def test_a_safety_filter_or_a_bad_request_never_moves_the_job(rt, first, second, refusal):
    job_id = job_on(rt, "second")
    first.submits.set(refusal)

    run_named(rt, f"{job_id}-submit")

    job = store_of(rt).job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == refusal.code and job["provider"] == "first"
    assert second.count() == 0


def test_a_timeout_never_moves_the_job_the_provider_may_have_taken_it(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(TransientError(ErrorCode.PROVIDER_TIMEOUT, "first did not answer in time"))

    for _ in range(4):
        with pytest.raises(TransientError):
            submit_job(rt, job_id)

    assert store_of(rt).job(job_id)["provider"] == "first" and second.count() == 0


def test_once_a_provider_accepted_the_job_nothing_moves_it(rt, first, second):
    job_id = job_on(rt, "second")
    run_named(rt, f"{job_id}-submit")  # first accepts
    first.checks.set(failed(ErrorCode.QUOTA_EXCEEDED, "quota exhausted while generating"))

    run_named(rt, f"{job_id}-poll-1")

    job = store_of(rt).job(job_id)
    assert job["status"] == JobStatus.FAILED and job["provider"] == "first" and second.count() == 0


def test_a_provider_that_cannot_honour_the_request_is_skipped_and_recorded(rt, first, second, third):
    job_id = job_on(rt, "third", "second", negative_prompt="no text on screen")  # third offers no negative_prompt
    first.submits.set(refused(ErrorCode.ACCESS_DENIED, "denied"))

    run_named(rt, f"{job_id}-submit")

    assert store_of(rt).job(job_id)["provider"] == "second"
    assert attempts(rt, job_id) == [("first", "veo-fake-1", "access_denied"), ("third", None, "unsupported_option")]
    assert third.count() == 0


def test_when_the_chain_is_used_up_the_job_fails_with_the_last_refusal_and_every_attempt(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(refused(ErrorCode.ACCESS_DENIED, "denied by first"))
    second.submits.set(refused(ErrorCode.ACCESS_DENIED, "denied by second"))

    run_named(rt, f"{job_id}-submit")
    run_named(rt, f"{job_id}-h1-submit")

    job = store_of(rt).job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["message"] == "denied by second"
    assert attempts(rt, job_id) == [("first", "veo-fake-1", "access_denied"), ("second", "veo-fake-1", "access_denied")]


def test_a_duplicate_submit_task_after_the_move_pays_nothing_twice(rt, first, second):
    job_id = job_on(rt, "second")
    first.submits.set(refused(ErrorCode.ACCESS_DENIED, "denied"))
    run_named(rt, f"{job_id}-submit")

    submit_job(rt, job_id)  # the first provider's task delivered again: the job now names "second"
    run_named(rt, f"{job_id}-h1-submit")
    submit_job(rt, job_id)

    assert (first.count("submit"), second.count("submit")) == (1, 1)


def test_an_explicit_model_moves_to_the_same_family_on_the_next_provider():
    gemini = FakeProvider("gemini", replace(FAKE_CAPABILITIES, models=("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"),
                                            default_model="veo-3.1-generate-preview"))
    vertex = FakeProvider("vertex", replace(FAKE_CAPABILITIES, models=("veo-3.1-generate-001", "veo-3.1-fast-generate-001"),
                                            default_model="veo-3.1-generate-001"))
    rt = make_runtime(providers=[gemini, vertex])
    job, _ = create_job(rt, {"prompt": PROMPT, "provider": "gemini", "model": "veo-3.1-fast-generate-preview",
                             "fallback_providers": ["vertex"]})
    gemini.submits.set(refused(ErrorCode.ACCESS_DENIED, "denied"))

    run_named(rt, f"{job['id']}-submit")

    moved = store_of(rt).job(job["id"])
    assert moved["model"] == "veo-3.1-fast-generate-001"
    assert moved["cost"]["basis"]["model"] == "veo-3.1-fast-generate-001"  # priced as the provider that will run it


def test_the_deployments_chain_applies_to_jobs_that_name_no_provider():
    a = FakeProvider("litellm-gemini", replace(FAKE_CAPABILITIES, models=("veo-3.1-generate-preview",), default_model="veo-3.1-generate-preview"))
    b = FakeProvider("b", replace(FAKE_CAPABILITIES, models=("veo-3.1-generate-001",), default_model="veo-3.1-generate-001"))
    rt = make_runtime({"VEO_FAILOVER_CHAINS": '{"veo-3.1": ["litellm-gemini"]}'}, providers=[a, b])
    job, _ = create_job(rt, {"prompt": PROMPT})
    assert job["provider"] == "litellm-gemini" and "fallback_providers" not in job  # the chain holds only itself
    named, _ = create_job(rt, {"prompt": PROMPT, "provider": "litellm-gemini"})
    assert "fallback_providers" not in named


@pytest.mark.parametrize("fallbacks, field", [(["nowhere"], "fallback_providers.0"), (["second", "first"], "fallback_providers.1")])
def test_a_fallback_that_is_not_enabled_or_is_the_jobs_own_provider_is_refused_before_anything_is_stored(rt, fallbacks, field):
    with pytest.raises(ApiError) as refused_:
        create_job(rt, {"prompt": PROMPT, "provider": "first", "fallback_providers": fallbacks})
    assert refused_.value.status == 400 and refused_.value.field == field
    assert store_of(rt).ids() == [] and tasks_of(rt).pending == []


@pytest.mark.parametrize("model, family", [
    ("veo-3.1-generate-preview", "veo-3.1"), ("veo-3.1-generate-001", "veo-3.1"), ("veo-3.1-fast-generate-001", "veo-3.1-fast"),
    ("veo-3.1-lite-generate-preview", "veo-3.1-lite"), ("veo-2.0-generate-001", "veo-2.0"), ("veo3.1", "veo-3.1"),
    ("veo-fake-1", None), (None, None),
])
def test_model_families(model, family):
    assert model_family(model) == family


def test_the_clients_list_wins_and_a_named_provider_without_one_gets_none():
    chains = {"veo-3.1": ["a", "b", "c"]}
    assert fallback_chain("a", ["c"], True, "veo-3.1", chains) == ["c"]
    assert fallback_chain("a", None, True, "veo-3.1", chains) == []
    assert fallback_chain("a", None, False, "veo-3.1", chains) == ["b", "c"]
    assert fallback_chain("a", None, False, None, chains) == []
