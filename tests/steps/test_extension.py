"""Video extension over the fakes (steps/accept.py + core/extension.py): a job that names a
finished job's video with `extend`. Every refusal is a 400 before anything is stored, queued or
paid for; an accepted extension records `extends` (its source, its chain's root) and reaches
its provider with the source video named the provider's way; chains (C extends B extends A) work."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from dev.simulators import clips
from veorelay.config import shipped_catalog
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.views import job_view
from veorelay.providers.base import OutputRef, Progress
from veorelay.providers.gemini import Gemini
from veorelay.providers.vertex import Vertex
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job

from .driver import drain, errors, run_named
from .entries import drop_request_object
from .fake_providers import FakeProvider, mp4
from .fakes import FakeStore, make_runtime
from .helpers import bucket_of, store_of, tasks_of, video_name

OTHER = "someone-else"


@pytest.fixture
def gemini() -> FakeProvider:
    return FakeProvider("gemini", Gemini.capabilities_for(shipped_catalog().provider("gemini")))


@pytest.fixture
def vertex() -> FakeProvider:
    return FakeProvider("vertex", Vertex.capabilities_for(shipped_catalog().provider("vertex")))


@pytest.fixture
def rt(gemini: FakeProvider, vertex: FakeProvider) -> Runtime:
    return make_runtime(providers=[gemini, vertex, FakeProvider()])


def file_uri(job_id: str) -> str:
    return f"https://generativelanguage.googleapis.com/v1beta/files/{job_id[:12]}"


def finish(rt: Runtime, provider: FakeProvider, job_id: str, seconds: float, height: int = 720) -> dict[str, Any]:
    """Run the job to `succeeded`: the provider makes one video of `seconds` at `height`p (16:9)."""
    url = f"https://videos.fake/{job_id}/0.mp4"
    provider.serve(url, mp4(clip=clips.clip(height * 16 // 9, height, seconds, audio=False)))
    provider.checks.set(Progress("succeeded", percent=100,
                                 outputs=(OutputRef(0, url=url, extra={"provider_uri": file_uri(job_id)}),)))
    log = drain(rt, skip=lambda t: t.target == "deliver_webhook")
    assert errors(log) == []
    job = store_of(rt).job(job_id)
    assert job["status"] == "succeeded", job.get("error")
    return job


def make(rt: Runtime, provider: str, client: str = "default", **fields: Any) -> dict[str, Any]:
    job, created = create_job(rt, {"prompt": "a lighthouse at dusk", "provider": provider, **fields}, client_id=client)
    assert created
    return job


def source(rt: Runtime, provider: FakeProvider, seconds: float = 8.0, height: int = 720, client: str = "default",
           **fields: Any) -> dict[str, Any]:
    return finish(rt, provider, make(rt, provider.name, client, **fields)["id"], seconds, height)


def refused(rt: Runtime, provider: FakeProvider, body: dict[str, Any], client: str = "default") -> ApiError:
    """The request is refused, and nothing was created, queued, stored or sent."""
    store, tasks, bucket = store_of(rt), tasks_of(rt), bucket_of(rt)
    jobs, pending, objects, calls = store.ids(), tasks.pending_names(), bucket.names(), provider.count()
    with pytest.raises(ApiError) as caught:
        create_job(rt, {"prompt": "then the storm", "provider": provider.name, **body}, client_id=client)
    assert (store.ids(), tasks.pending_names(), bucket.names(), provider.count()) == (jobs, pending, objects, calls)
    return caught.value


def test_a_gemini_extension_names_the_source_by_its_file_uri_and_records_its_source(rt, gemini):
    a = source(rt, gemini)

    b = make(rt, "gemini", extend={"job_id": a["id"]})

    stored = store_of(rt).job(b["id"])
    assert stored["extends"] == {"job_id": a["id"], "output": 0, "root_job_id": a["id"], "depth": 1,
                                 "source_uri": a["outputs"][0]["uri"], "source_seconds": pytest.approx(8.0, abs=0.2),
                                 "duration_seconds": pytest.approx(15.0, abs=0.2), "added_seconds": 7}
    assert "fallback_providers" not in stored  # an extension stays on the provider that holds its source
    assert job_view(stored)["extends"]["job_id"] == a["id"]
    assert stored["cost"]["basis"]["seconds"] == 7  # billed for the seconds it adds
    run_named(rt, f"{b['id']}-submit")
    sent = gemini.requests()[-1]
    assert sent.extend is not None and sent.extend.job_id == a["id"]
    assert sent.extend.video is not None and sent.extend.video.provider_uri == file_uri(a["id"])


def test_finalize_keeps_the_providers_file_uri_on_the_output(rt, gemini):
    a = source(rt, gemini)
    assert a["outputs"][0]["provider_uri"] == file_uri(a["id"])


def test_a_chain_c_extends_b_extends_a_each_stored_in_its_own_folder(rt, gemini):
    a = source(rt, gemini, 8.0)
    b = finish(rt, gemini, make(rt, "gemini", extend={"job_id": a["id"]})["id"], 15.0)
    c = finish(rt, gemini, make(rt, "gemini", extend={"job_id": b["id"]})["id"], 22.0)

    assert c["extends"]["job_id"] == b["id"] and c["extends"]["root_job_id"] == a["id"] and c["extends"]["depth"] == 2
    assert c["extends"]["source_seconds"] == pytest.approx(15.0, abs=0.2)  # B's stored video, as measured
    assert gemini.requests()[-1].extend.video.provider_uri == file_uri(b["id"])  # type: ignore[union-attr]
    names = set(bucket_of(rt).names())
    assert {video_name(rt, j["id"], 0) for j in (a, b, c)} <= names
    assert c["outputs"][0]["media"]["duration_seconds"] == pytest.approx(22.0, abs=0.2)
    assert not c.get("warnings")  # an extension's length is not held to a requested duration


def test_a_vertex_extension_sends_the_stored_output_in_the_bucket(rt, vertex, gemini):
    a = source(rt, gemini, 8.0)  # vertex reads any Veo MP4 in Cloud Storage: ours, whoever made it

    b = make(rt, "vertex", extend={"job_id": a["id"]})
    run_named(rt, f"{b['id']}-submit")

    video = vertex.requests()[-1].extend.video  # type: ignore[union-attr]
    assert video is not None and video.gcs_uri == a["outputs"][0]["uri"] and video.gcs_uri.startswith("gs://")


@pytest.mark.badinput
def test_another_clients_job_is_refused_like_a_missing_one(rt, gemini):
    theirs = source(rt, gemini, client=OTHER)

    err = refused(rt, gemini, {"extend": {"job_id": theirs["id"]}})
    missing = refused(rt, gemini, {"extend": {"job_id": "f" * 32}})

    assert (err.status, err.code, err.field) == (400, ErrorCode.INVALID_REQUEST, "extend.job_id")
    assert err.message == missing.message  # nothing tells another client's job from none


def test_a_deleted_source_is_refused_like_a_missing_one(rt, gemini):
    a = source(rt, gemini)
    store_of(rt).edit(a["id"], deleted_at=a["created_at"])
    err = refused(rt, gemini, {"extend": {"job_id": a["id"]}})
    assert (err.code, err.field) == (ErrorCode.INVALID_REQUEST, "extend.job_id")


def test_a_source_that_has_not_succeeded_is_refused(rt, gemini):
    running = make(rt, "gemini")
    err = refused(rt, gemini, {"extend": {"job_id": running["id"]}})
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend.job_id") and "accepted" in err.message


def test_a_source_too_long_is_refused(rt, gemini, vertex):
    long_one = source(rt, gemini, 31.0)
    err = refused(rt, vertex, {"extend": {"job_id": long_one["id"]}})  # Vertex extends up to 30 s
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend.job_id") and "31 s" in err.message
    make(rt, "gemini", extend={"job_id": long_one["id"]})  # the Gemini API, up to 141 s


def test_a_source_of_the_wrong_resolution_is_refused(rt, gemini):
    full_hd = source(rt, gemini, 1.0, height=1080, resolution="1080p")
    err = refused(rt, gemini, {"extend": {"job_id": full_hd["id"]}})
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend.job_id") and "1080p" in err.message


def test_a_source_older_than_the_provider_keeps_it_is_refused(rt, gemini):
    a = source(rt, gemini)
    store_of(rt).edit(a["id"], timestamps={k: v - timedelta(hours=47, minutes=30) for k, v in a["timestamps"].items()})  # kept 48 h
    err = refused(rt, gemini, {"extend": {"job_id": a["id"]}})
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend.job_id") and "too old" in err.message


def test_the_gemini_api_extends_only_its_own_videos(rt, gemini, vertex):
    made_on_vertex = source(rt, vertex)
    err = refused(rt, gemini, {"extend": {"job_id": made_on_vertex["id"]}})
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend.job_id") and "vertex" in err.message


def test_a_provider_or_model_that_cannot_extend_is_refused(rt, gemini):
    a = source(rt, gemini)
    fake = rt.providers["fake"]
    err = refused(rt, fake, {"extend": {"job_id": a["id"]}})  # type: ignore[arg-type]
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend")
    lite = refused(rt, gemini, {"extend": {"job_id": a["id"]}, "model": "veo-3.1-lite-generate-preview"})
    assert (lite.code, lite.field) == (ErrorCode.UNSUPPORTED_OPTION, "extend")


@pytest.mark.parametrize("field, value", [
    ("image", {"gcs_uri": "gs://veo-steps-bucket/inputs/x.png", "mime_type": "image/png"}),
    ("reference_images", [{"image": {"gcs_uri": "gs://veo-steps-bucket/inputs/x.png", "mime_type": "image/png"}}]),
    ("duration_seconds", 8),
])
def test_an_extension_with_frames_references_or_a_duration_is_refused(rt, gemini, field, value):
    a = source(rt, gemini)
    err = refused(rt, gemini, {"extend": {"job_id": a["id"]}, field: value})
    assert (err.status, err.code, err.field) == (400, ErrorCode.INVALID_REQUEST, field)


def test_another_resolution_or_aspect_ratio_than_the_sources_is_refused(rt, gemini):
    a = source(rt, gemini)
    err = refused(rt, gemini, {"extend": {"job_id": a["id"]}, "aspect_ratio": "9:16"})
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "aspect_ratio")


def test_an_extension_cannot_name_fallback_providers(rt, gemini):
    a = source(rt, gemini)
    err = refused(rt, gemini, {"extend": {"job_id": a["id"]}, "fallback_providers": ["vertex"]})
    assert (err.code, err.field) == (ErrorCode.UNSUPPORTED_OPTION, "fallback_providers")


@pytest.mark.badinput
def test_a_client_cannot_name_the_source_video_itself(rt, gemini):
    a = source(rt, gemini)
    err = refused(rt, gemini, {"extend": {"job_id": a["id"], "video": {"gcs_uri": "gs://elsewhere/x.mp4"}}})
    assert (err.code, err.field, err.message) == (ErrorCode.INVALID_REQUEST, "extend.video", "unknown field 'extend.video'")


def test_a_missing_output_index_is_refused(rt, gemini):
    a = source(rt, gemini)
    err = refused(rt, gemini, {"extend": {"job_id": a["id"], "output": 2}})
    assert (err.code, err.field) == (ErrorCode.INVALID_REQUEST, "extend.output")


def test_without_a_measured_length_the_requested_one_counts(gemini, vertex):
    store = FakeStore()
    rt = make_runtime(providers=[gemini, vertex], store=store)
    a = source(rt, gemini, 8.0)
    store.edit(a["id"], outputs=[{k: v for k, v in o.items() if k != "media"} for o in a["outputs"]],
               request={**a["request"], "duration_seconds": 6})
    b = make(rt, "gemini", extend={"job_id": a["id"]})
    assert b["extends"]["source_seconds"] == 6.0 and b["extends"]["duration_seconds"] == 13.0


def test_a_request_object_extends_a_job_of_its_own_client_only(rt, gemini):
    ours = source(rt, gemini, client=rt.settings.requests_client_id)  # the bucket's writers act as this client
    theirs = source(rt, gemini)

    status, job = drop_request_object(rt, json.dumps({"prompt": "then", "provider": "gemini", "extend": {"job_id": ours["id"]}}).encode(),
                                      "requests/ext-1.json")
    assert status == 202 and job["extends"]["job_id"] == ours["id"]
    status, answer = drop_request_object(rt, json.dumps({"prompt": "then", "provider": "gemini", "extend": {"job_id": theirs["id"]}}).encode(),
                                         "requests/ext-2.json")
    assert status == 400 and answer["error"]["field"] == "extend.job_id" and answer["error"]["code"] == "invalid_request"
