"""Accepting a job (steps/accept.py create_job): validated, recorded once, its submission
queued; nothing paid for, and a refused request leaves nothing behind."""
from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from veorelay.core.errors import ApiError, TransientError
from veorelay.core.job import JobStatus
from veorelay.steps.accept import create_job

from .fakes import make_runtime
from .helpers import PROMPT, WEBHOOK_URL, body
from .image_files import png

PNG = png()
PNG_SHA = hashlib.sha256(PNG).hexdigest()


def input_name(job_id: str, slot: str = "image", data: bytes = PNG, ext: str = "png") -> str:
    """inputs/<job id>/<slot>-<sha256 prefix>.<ext>: named by its content (steps/images.py)."""
    return f"inputs/{job_id}/{slot}-{hashlib.sha256(data).hexdigest()[:32]}.{ext}"


def test_a_job_is_recorded_as_accepted_and_its_submission_queued_on_the_providers_queue(rt, provider, store, tasks):
    job, created = create_job(rt, body(metadata={"order": 7}, webhook_url=WEBHOOK_URL))

    assert created
    stored = store.job(job["id"])
    assert stored["status"] == JobStatus.ACCEPTED and stored["provider"] == "fake"
    assert stored["model"] == provider.capabilities.default_model
    assert stored["request"] == {"prompt": PROMPT}  # the routing fields are kept beside it, not in it
    assert stored["metadata"] == {"order": 7} and stored["webhook"] == {"url": WEBHOOK_URL, "events": None}
    assert stored["progress"] == {"percent": 0, "stage": "accepted"} and stored["outputs"] == []
    assert stored["deadline_at"] - stored["created_at"] == timedelta(seconds=rt.settings.job_deadline_s)
    assert [(t.name, t.queue, t.target, t.payload, t.delay_s) for t in tasks.pending] == [
        (f"{job['id']}-submit", "veo-submit-fake", "submit_job", {"job_id": job["id"]}, 0.0)]
    assert provider.calls == []  # nothing is paid for before the submit step


def test_the_clients_deadline_and_model_are_kept(rt, store):
    job, _ = create_job(rt, body(model="veo-fake-2", deadline_seconds=120, aspect_ratio="9:16"))
    stored = store.job(job["id"])
    assert stored["model"] == "veo-fake-2" and stored["request"]["aspect_ratio"] == "9:16"
    assert stored["deadline_at"] - stored["created_at"] == timedelta(seconds=120)


@pytest.mark.parametrize("fields, status, code, field", [
    ({"provider": "nope"}, 400, "unsupported_option", "provider"),
    ({"resolution": "1080p"}, 400, "unsupported_option", "resolution"),
    ({"model": "veo-9"}, 400, "unsupported_option", "model"),
    ({"colour": "red"}, 400, "invalid_request", "colour"),
    ({"webhook_url": "https://10.0.0.7/hook"}, 400, "invalid_request", "webhook_url"),
])
def test_a_refused_request_records_nothing_and_queues_nothing(rt, store, tasks, bucket, fields, status, code, field):
    with pytest.raises(ApiError) as refused:
        create_job(rt, body(**fields))
    assert (refused.value.status, refused.value.code, refused.value.field) == (status, code, field)
    assert store.ids() == [] and tasks.created == [] and bucket.names() == []


def test_without_a_provider_the_default_one_is_used_and_refused_when_not_served_here(rt, store):
    with pytest.raises(ApiError) as refused:
        create_job(rt, {"prompt": PROMPT})
    assert refused.value.code == "unsupported_option" and "litellm-gemini" in refused.value.message
    assert store.ids() == []


def test_an_idempotency_key_replayed_with_the_same_body_returns_the_first_job(rt, store, tasks):
    first, created = create_job(rt, body(), client_id="acme", idempotency_key="k-1")
    again, created_again = create_job(rt, body(), client_id="acme", idempotency_key="k-1")

    assert created and not created_again and again["id"] == first["id"]
    assert store.ids() == [first["id"]]
    assert tasks.names() == [f"{first['id']}-submit"] and tasks.refused == [f"{first['id']}-submit"]


def test_an_idempotency_key_reused_with_another_body_is_a_conflict(rt, store):
    first, _ = create_job(rt, body(), client_id="acme", idempotency_key="k-1")
    with pytest.raises(ApiError) as refused:
        create_job(rt, body(prompt="something else entirely"), client_id="acme", idempotency_key="k-1")
    assert (refused.value.status, refused.value.code) == (409, "conflict")
    assert store.job(first["id"])["request"]["prompt"] == PROMPT


def test_the_same_key_from_another_client_is_another_job(rt, store):
    a, _ = create_job(rt, body(), client_id="acme", idempotency_key="k-1")
    b, created = create_job(rt, body(), client_id="globex", idempotency_key="k-1")
    assert created and a["id"] != b["id"] and sorted(store.ids()) == sorted([a["id"], b["id"]])


def test_a_replay_queues_the_submission_the_first_request_died_before_queueing(rt, store, tasks):
    tasks.faults.add("enqueue", TransientError("internal", "could not enqueue submit_job"))
    with pytest.raises(TransientError):
        create_job(rt, body(), idempotency_key="k-2")
    assert tasks.created == []  # recorded, but its submission lost

    job, created = create_job(rt, body(), idempotency_key="k-2")
    assert not created and tasks.pending_names() == [f"{job['id']}-submit"]


def test_a_replay_of_a_job_that_moved_on_queues_nothing(rt, store, tasks):
    job, _ = create_job(rt, body(), idempotency_key="k-3")
    tasks.take(f"{job['id']}-submit")
    store.edit(job["id"], status="running")
    tasks.forget_names()

    _, created = create_job(rt, body(), idempotency_key="k-3")
    assert not created and tasks.pending == []


def test_an_inline_image_is_kept_in_the_bucket_and_the_job_holds_only_its_uri(rt, store, bucket):
    image = {"base64": base64.b64encode(PNG).decode(), "mime_type": "image/png"}
    job, _ = create_job(rt, body(image=image))

    name = input_name(job["id"])
    assert bucket.names() == [name] and bucket.data(name) == PNG
    assert bucket.objects[name].metadata == {"sha256": PNG_SHA, "width": "16", "height": "12"}
    assert store.job(job["id"])["request"]["image"] == {"gcs_uri": f"gs://{bucket.name}/{name}", "mime_type": "image/png"}


def test_an_image_that_is_not_one_is_refused_and_leaves_nothing_in_the_bucket(rt, store, bucket):
    with pytest.raises(ApiError) as refused:
        create_job(rt, body(image={"base64": base64.b64encode(b"GIF89a" + b"\x00" * 32).decode(), "mime_type": "image/png"}))
    assert (refused.value.code, refused.value.field) == ("invalid_request", "image")
    assert bucket.names() == [] and store.ids() == []


def test_an_image_stored_before_a_later_one_is_refused_is_removed_again(rt, store, bucket):
    good = {"base64": base64.b64encode(PNG).decode(), "mime_type": "image/png"}
    bad = {"base64": base64.b64encode(b"not an image at all").decode(), "mime_type": "image/png"}
    with pytest.raises(ApiError) as refused:
        create_job(rt, body(image=good, last_frame=bad))
    assert refused.value.field == "last_frame"
    assert bucket.names() == [] and store.ids() == []


def test_an_uploaded_part_becomes_the_image_and_an_unused_part_is_refused(rt, store, bucket):
    job, _ = create_job(rt, body(image={"upload": "first"}), uploads={"first": PNG})
    assert store.job(job["id"])["request"]["image"]["gcs_uri"] == f"gs://{bucket.name}/{input_name(job['id'])}"

    with pytest.raises(ApiError) as refused:
        create_job(rt, body(image={"upload": "first"}), uploads={"first": PNG, "spare": PNG})
    assert refused.value.field == "spare" and len(store.ids()) == 1
    assert bucket.names() == [input_name(job["id"])]  # the refused job wrote nothing


def test_an_image_in_veo_relays_own_bucket_is_refused(rt, bucket, store):
    bucket.put("inputs/someone-else/image.png", PNG)
    with pytest.raises(ApiError) as refused:
        create_job(rt, body(image={"gcs_uri": f"gs://{bucket.name}/inputs/someone-else/image.png"}))
    assert refused.value.field == "image.gcs_uri" and store.ids() == []


def test_an_image_in_the_clients_bucket_is_copied_in():
    rt = make_runtime({"VEO_INPUT_BUCKETS": "client-bucket"})  # the deployment reads that bucket
    rt.bucket.client.bucket("client-bucket").put("frames/first.png", PNG)
    job, _ = create_job(rt, body(image={"gcs_uri": "gs://client-bucket/frames/first.png"}))
    assert rt.bucket.data(input_name(job["id"])) == PNG
