"""Deleting a job (steps/delete.py, DELETE /v1/videos/{id}): its videos, posters and job.json
removed, `deleted_at` set, listings leave it out; idempotent through a failed removal; an
unfinished job or another client's is refused and nothing changes."""
from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc

from veorelay.core.errors import ApiError, TransientError
from veorelay.steps.delete import delete_job
from veorelay.steps.finalize import finalize_job

from .fake_providers import mp4
from .helpers import downloading_job, job_json_name, poster_name, running_job, video_name

CLIENT = "default"  # create_job's client when none is named (tests/steps/helpers.py)


def succeeded_job(rt, store) -> str:
    job_id = downloading_job(rt, mp4(seed=1), mp4(seed=2))
    finalize_job(rt, job_id, 1)
    assert store.get(job_id)["status"] == "succeeded"
    return job_id


def stored(rt, bucket, job_id) -> list[str]:
    return bucket.names(f"{rt.settings.output_prefix}/{job_id}/")


def test_delete_removes_every_object_and_marks_the_job(rt, store, bucket):
    job_id = succeeded_job(rt, store)
    other = succeeded_job(rt, store)
    assert {video_name(rt, job_id, 0), video_name(rt, job_id, 1), job_json_name(rt, job_id)} <= set(stored(rt, bucket, job_id))
    job = delete_job(rt, CLIENT, job_id)
    assert job["deleted_at"] is not None and store.get(job_id)["deleted_at"] == job["deleted_at"]
    assert stored(rt, bucket, job_id) == []
    assert stored(rt, bucket, other), "another job's videos stay"
    page, _ = store.list_jobs(CLIENT, limit=100)
    assert job_id not in [j["id"] for j in page] and other in [j["id"] for j in page]


def test_posters_go_too(rt, store, bucket):
    job_id = succeeded_job(rt, store)
    bucket.put(poster_name(rt, job_id, 0), b"\xff\xd8\xff poster", content_type="image/jpeg")  # by index, recorded or not
    delete_job(rt, CLIENT, job_id)
    assert stored(rt, bucket, job_id) == []


def test_a_failed_removal_is_retryable_and_the_retry_finishes(rt, store, bucket):
    job_id = succeeded_job(rt, store)
    bucket.faults.add("delete", gexc.ServiceUnavailable("storage down"), times=1)
    with pytest.raises(TransientError):
        delete_job(rt, CLIENT, job_id)
    marked = store.get(job_id)["deleted_at"]
    assert marked is not None and stored(rt, bucket, job_id)  # marked first: no client sees it lose its videos
    again = delete_job(rt, CLIENT, job_id)  # the client sends it again
    assert again["deleted_at"] == marked and stored(rt, bucket, job_id) == []
    assert delete_job(rt, CLIENT, job_id)["deleted_at"] == marked  # and again: the same answer


def test_an_unfinished_job_is_a_409_and_keeps_everything(rt, store):
    job_id = running_job(rt)
    with pytest.raises(ApiError) as err:
        delete_job(rt, CLIENT, job_id)
    assert err.value.status == 409 and "cancel it first" in err.value.message
    assert store.get(job_id).get("deleted_at") is None


def test_another_clients_job_is_a_404(rt, store, bucket):
    job_id = succeeded_job(rt, store)
    with pytest.raises(ApiError) as err:
        delete_job(rt, "someone-else", job_id)
    with pytest.raises(ApiError) as missing:
        delete_job(rt, "someone-else", "f" * 32)
    assert (err.value.status, err.value.code, err.value.message, err.value.field) == (404, "not_found", "no such job", "id")
    assert err.value.body() == missing.value.body()  # the same as for a job that does not exist: nothing told
    assert store.get(job_id).get("deleted_at") is None and stored(rt, bucket, job_id)


def test_only_the_jobs_own_folder_is_touched(rt, store, bucket):
    """A recorded name outside the job's folder (a corrupted record) is never removed."""
    job_id = succeeded_job(rt, store)
    bucket.put("inputs/keep.png", b"png")
    job = store.get(job_id)
    outputs = [{**job["outputs"][0], "name": "inputs/keep.png"}, *job["outputs"][1:]]
    store.update(job_id, {"succeeded"}, {"outputs": outputs})
    delete_job(rt, CLIENT, job_id)
    assert bucket.names("inputs/keep.png") == ["inputs/keep.png"]
