"""Each dialect's answers, as its document shows them, read into one progress vocabulary."""
import json
import time
from datetime import UTC, datetime

import pytest

from veorelay.providers import flow, genaipro, newapi, vertex
from veorelay.providers.inline import InlineAnswer


# ---------------------------------------------------------------------------------------- newapi
def task(**data):
    base = {"bytes_base64_encoded": "", "error": None, "format": "mp4", "metadata": None, "status": "processing", "task_id": "T", "url": ""}
    return InlineAnswer({"code": "success", "message": "", "data": {**base, **data}}, (0,))


@pytest.mark.parametrize("status", ["queued", "in_progress", "processing"])
def test_newapi_running_words(status):
    progress = newapi.parse_task(task(status=status), "T")
    assert progress.state == "running" and progress.stage == status


@pytest.mark.parametrize("status", ["succeeded", "completed"])  # the document uses both words
def test_newapi_success_gives_the_content_url(status):
    progress = newapi.parse_task(task(status=status, url="https://computevault.unodetech.xyz/v1/videos/T/content"), "T")
    assert progress.state == "succeeded" and [o.url for o in progress.outputs] == ["https://computevault.unodetech.xyz/v1/videos/T/content"]


def test_newapi_success_with_inline_bytes_points_at_the_blob():
    answer = InlineAnswer({"code": "success", "data": {"status": "succeeded", "url": "", "bytes_base64_encoded": "@blob:0"}}, (1234,))
    [ref] = newapi.parse_task(answer, "T").outputs
    assert ref.url is None and ref.extra["inline"] == {"task_id": "T", "blob": 0, "size": 1234}


def test_newapi_failure_message_is_in_url_as_documented():
    progress = newapi.parse_task(task(status="failed", url="Reference to video does not support this mix of reference images."), "T")
    assert progress.state == "failed" and progress.error.code == "provider_error"
    assert progress.error.message == "Reference to video does not support this mix of reference images."


def test_newapi_safety_failures_are_rai_filtered():
    progress = newapi.parse_task(task(status="failed", error={"message": "blocked by safety filters"}), "T")
    assert progress.error.code == "rai_filtered"


def test_newapi_success_without_a_video_is_a_failure():
    assert newapi.parse_task(task(status="succeeded"), "T").error.code == "provider_error"


def test_newapi_submit_body_follows_the_document():
    from veorelay.core.request import parse_request

    img = {"gcs_uri": "gs://veo-bucket/inputs/x/image.png", "mime_type": "image/png"}
    req = parse_request({"prompt": "a cat", "model": "veo-3.1-generate-preview", "aspect_ratio": "9:16", "duration_seconds": 8,
                         "image": img, "last_frame": img, "reference_images": [{"image": img, "type": "style"}]})
    body = newapi.submit_body(req, lambda image: "QUJD")
    assert body == {"model": "veo-3.1-generate-preview", "prompt": "a cat", "image": "QUJD", "metadata": {
        "aspectRatio": "9:16", "durationSeconds": 8, "lastFrame": "QUJD", "referenceImages": [{"image": "QUJD", "referenceType": "style"}]}}
    assert newapi.task_id_of({"task_id": "a"}) == "a" and newapi.task_id_of({"data": {"task_id": "b"}}) == "b"


# ------------------------------------------------------------------------------------------ flow
def op(status, **operation):
    return {"operation": {"name": "n", **operation}, "sceneId": "s", "status": status}


def test_flow_pending_until_every_operation_ends():
    progress = flow.parse_check({"operations": [op(flow.SUCCESSFUL, metadata={"video": {"fifeUrl": "https://f/1"}}),
                                                op("MEDIA_GENERATION_STATUS_ACTIVE")]})
    assert progress.state == "running" and progress.percent == 50


def test_flow_success_gives_every_fife_url():
    progress = flow.parse_check({"operations": [op(flow.SUCCESSFUL, metadata={"video": {"fifeUrl": f"https://f/{i}"}}) for i in range(2)]})
    assert progress.state == "succeeded" and [o.url for o in progress.outputs] == ["https://f/0", "https://f/1"]


def test_flow_keeps_the_videos_of_a_partly_filtered_batch():
    progress = flow.parse_check({"operations": [op(flow.UNSAFE, error={"code": 3}), op(flow.SUCCESSFUL, metadata={"video": {"fifeUrl": "https://f"}})]})
    assert progress.state == "succeeded" and len(progress.outputs) == 1


@pytest.mark.parametrize("status,code", [(flow.UNSAFE, "rai_filtered"), ("MEDIA_GENERATION_STATUS_ERROR_INTERNAL", "provider_error")])
def test_flow_errors(status, code):
    assert flow.parse_check({"operations": [op(status, error={"code": 13, "message": "m"})]}).error.code == code


def test_flow_proxy_refusal_with_an_expired_token_is_access_denied():
    error = flow.refusal_error({"error": {"code": 401, "message": "invalid credentials", "status": "UNAUTHENTICATED"}})
    assert error.code == "access_denied" and "VEO_FLOW_GOOGLE_TOKEN" in error.message


def test_flow_video_body_has_one_request_per_video():
    from veorelay.core.request import parse_request

    body = flow.video_body(parse_request({"prompt": "p", "sample_count": 3, "seed": 10}), flow.T2V_PORTRAIT, "proj", {}, [])
    assert [r["seed"] for r in body["requests"]] == [10, 11, 12]
    assert {r["aspectRatio"] for r in body["requests"]} == {"VIDEO_ASPECT_RATIO_PORTRAIT"}
    assert len({r["metadata"]["sceneId"] for r in body["requests"]}) == 3
    assert body["clientContext"]["projectId"] == "proj"


# -------------------------------------------------------------------------------------- genaipro
def test_genaipro_events():
    assert genaipro.parse_event("video_generation_status", '"processing"').percent == 20
    done = genaipro.parse_event("video_generation_complete", json.dumps([
        {"id": "a", "file_url": "https://x/a.mp4", "status": genaipro.SUCCESSFUL}, {"id": "b", "file_url": "https://x/b.mp4"}]))
    assert done.kind == "complete" and [o.url for o in done.outputs] == ["https://x/a.mp4", "https://x/b.mp4"]
    assert genaipro.parse_event("error", '{"code": "CONTENT_FILTERED", "message": "m"}').error.code == "rai_filtered"
    assert genaipro.parse_event("error", '{"code": "GENERATION_FAILED", "message": "m"}').error.code == "provider_error"
    assert genaipro.parse_event("video_generation_complete", '[{"id": "a", "file_u') is None  # cut in half
    assert genaipro.parse_event("ping", '"x"') is None


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Histories:
    """GET /api/v1/veo/histories, newest first, paged."""

    def __init__(self, rows, page_size=2):
        self.rows, self.page_size, self.pages = rows, page_size, []

    def request(self, method, url, params=None, **kwargs):
        page = params["page"]
        self.pages.append(page)
        data = self.rows[(page - 1) * self.page_size:page * self.page_size]

        class Resp:
            status_code = 200
            headers = {}
            text = ""

            @staticmethod
            def json():
                return {"data": data, "total": len(self.rows), "page": page, "total_pages": -(-len(self.rows) // self.page_size)}
        return Resp()


def adapter(rows, page_size=2):
    from veorelay.config import ProviderSettings

    session = Histories(rows, page_size)
    return genaipro.Genaipro(ProviderSettings("genaipro", "https://g", "k"), session), session


def test_genaipro_finds_its_generation_by_prompt_and_time():
    t = 1_800_000_000.0
    rows = [
        {"id": "n1", "prompt": "other", "status": genaipro.SUCCESSFUL, "file_urls": ["u"], "created_at": stamp(t + 50)},
        {"id": "m2", "prompt": "mine", "status": genaipro.SUCCESSFUL, "file_urls": ["https://x/2"], "created_at": stamp(t + 1)},
        {"id": "m1", "prompt": "mine", "status": genaipro.SUCCESSFUL, "file_urls": ["https://x/1"], "created_at": stamp(t + 1)},
        {"id": "old", "prompt": "mine", "status": genaipro.SUCCESSFUL, "file_urls": ["https://x/old"], "created_at": stamp(t - 3600)},
        {"id": "older", "prompt": "mine", "status": genaipro.SUCCESSFUL, "file_urls": ["https://x/older"], "created_at": stamp(t - 7200)},
    ]
    provider, session = adapter(rows)
    handle = {"submitted_at": t, "prompt": "mine", "count": 2}
    [generation] = provider.candidates(handle)  # the entries of one second are one generation
    assert (generation.ids, generation.created_at, generation.alike) == (("m1", "m2"), t + 1, 1)
    assert session.pages == [1, 2]  # stopped once the entries were older than the submit
    assert provider.check(handle).stage == "lost"  # an unpinned handle finds nothing: never a guess
    pinned = provider.pin(handle, generation)
    assert provider.is_pinned(pinned) and not provider.is_pinned(handle) and pinned["history_ids"] == ["m1", "m2"]
    progress = provider.check(pinned)
    assert progress.state == "succeeded" and sorted(o.url for o in progress.outputs) == ["https://x/1", "https://x/2"]


def test_genaipro_lists_every_look_alike_generation_and_flags_the_ones_it_cannot_split():
    t = 1_800_000_000.0
    row = {"prompt": "mine", "status": genaipro.SUCCESSFUL}
    rows = [
        {**row, "id": "b2", "file_urls": ["https://x/b2"], "created_at": stamp(t + 9)},
        {**row, "id": "b1", "file_urls": ["https://x/b1"], "created_at": stamp(t + 9)},  # two jobs' videos in one second
        {**row, "id": "a1", "file_urls": ["https://x/a1"], "created_at": stamp(t + 3)},
    ]
    provider, _ = adapter(rows, page_size=10)
    handle = {"submitted_at": t, "prompt": "mine", "count": 1}
    assert [(g.ids, g.alike) for g in provider.candidates(handle)] == [(("b1", "b2"), 2), (("a1",), 1)]
    # A generation pinned by ids that then shows more videos than the job asked for is not delivered.
    pinned = provider.pin(handle, provider.candidates(handle)[0])
    assert provider.check(pinned).state == "failed" and "more than one job's" in provider.check(pinned).error.message


def test_genaipro_builds_the_handle_its_histories_lookup_takes():
    from veorelay.core.request import parse_request

    t = 1_800_000_000.0
    rows = [{"id": "m1", "prompt": "mine", "status": genaipro.SUCCESSFUL, "file_urls": ["https://x/1"], "created_at": stamp(t + 2)}]
    provider, _ = adapter(rows)
    handle = provider.stream_handle(parse_request({"prompt": "mine", "sample_count": 2}), t)
    assert handle == {"submitted_at": t, "prompt": "mine", "count": 2}  # JSON: stored on the job as is
    assert [g.ids for g in provider.candidates(handle)] == [("m1",)]
    assert provider.candidates(provider.stream_handle(parse_request({"prompt": "other"}), t)) == []


def test_genaipro_names_the_generation_its_stream_completed():
    data = '[{"id": "v1", "prompt": "p", "file_url": "https://x/1"}, {"id": "v2", "prompt": "p", "file_url": "https://x/2"}]'
    event = genaipro.parse_event("video_generation_complete", data)
    assert event.generation_ids == ("v1", "v2") and [o.url for o in event.outputs] == ["https://x/1", "https://x/2"]
    assert genaipro.parse_event("video_generation_complete", '[{"file_url": "https://x/1"}]').generation_ids == ()


def test_genaipro_history_states():
    t = 1_800_000_000.0
    row = {"prompt": "p", "created_at": stamp(t), "file_urls": []}
    assert genaipro.progress_of([{**row, "status": "MEDIA_GENERATION_STATUS_ACTIVE"}]).stage == "processing"
    assert genaipro.progress_of([{**row, "status": "MEDIA_GENERATION_STATUS_FAILED"}]).state == "failed"
    assert genaipro.progress_of([{**row, "status": genaipro.SUCCESSFUL}]).state == "failed"  # success without a video
    provider, _ = adapter([])
    assert provider.check({"submitted_at": time.time() - 3600, "prompt": "p", "count": 1}).state == "failed"  # long gone, no record
    assert provider.check({"submitted_at": time.time(), "prompt": "p", "count": 1}).stage == "lost"


# ---------------------------------------------------------------------------------------- vertex
def test_vertex_videos_in_the_bucket_must_be_in_the_jobs_folder():
    doc = {"name": "projects/p/locations/l/publishers/google/models/veo-3.0-generate-001/operations/o", "done": True,
           "response": {"videos": [{"gcsUri": "gs://veo-bucket/vertex/J/1/sample_0.mp4"}, {"gcsUri": "gs://veo-bucket/vertex/J/1/sample_1.mp4"}]}}
    progress = vertex.parse_operation(InlineAnswer(doc, ()), "gs://veo-bucket/vertex/J/")
    assert progress.state == "succeeded" and [o.gcs_uri for o in progress.outputs] == ["gs://veo-bucket/vertex/J/1/sample_0.mp4", "gs://veo-bucket/vertex/J/1/sample_1.mp4"]
    assert vertex.parse_operation(InlineAnswer(doc, ()), "gs://veo-bucket/vertex/OTHER/").state == "failed"


def test_vertex_inline_videos_and_failures():
    name = "projects/p/locations/l/publishers/google/models/veo-3.0-generate-001/operations/o"
    doc = {"name": name, "done": True, "response": {"videos": [{"bytesBase64Encoded": "@blob:0"}]}}
    [ref] = vertex.parse_operation(InlineAnswer(doc, (99,)), None).outputs
    assert ref.extra["inline"] == {"operation": name, "model": "veo-3.0-generate-001", "blob": 0, "size": 99}
    filtered = {"name": name, "done": True, "response": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["r"]}}
    assert vertex.parse_operation(InlineAnswer(filtered, ()), None).error.code == "rai_filtered"
    assert vertex.parse_operation(InlineAnswer({"name": name}, ()), None).state == "running"
    failed = {"name": name, "done": True, "error": {"code": 8, "status": "RESOURCE_EXHAUSTED", "message": "m"}}
    assert vertex.parse_operation(InlineAnswer(failed, ()), None).error.code == "quota_exceeded"


# ------------------------------------------------------------------------------ vertex, the call
class Recorder:
    def __init__(self):
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))

        class Resp:
            status_code = 200
            headers = {"Content-Type": "application/json"}
            text = ""

            @staticmethod
            def json():
                return {"name": "projects/p/locations/l/publishers/google/models/m/operations/o"}
        return Resp()


@pytest.mark.parametrize("extras,token,storage", [
    ({"ACCESS_TOKEN": "ya29.test", "WRITE_TO_BUCKET": "false"}, "ya29.test", None),
    ({"ACCESS_TOKEN": "ya29.test"}, "ya29.test", "gs://veo-bucket/vertex/J1/"),
])
def test_vertex_token_and_storage_uri(extras, token, storage):
    from veorelay.config import ProviderSettings
    from veorelay.core.request import parse_request
    from veorelay.providers.base import ProviderEnv

    session = Recorder()
    adapter = vertex.Vertex(ProviderSettings("vertex", "https://us-central1-aiplatform.googleapis.com", "api-key", extras), session,
                            ProviderEnv(bucket="veo-bucket", project="proj", location="us-central1"))
    handle = adapter.submit("J1", parse_request({"prompt": "p", "generate_audio": True}))
    _method, url, kwargs = session.calls[0]
    assert url == "https://us-central1-aiplatform.googleapis.com/v1/projects/proj/locations/us-central1/publishers/google/models/veo-3.1-generate-001:predictLongRunning"  # the default
    assert kwargs["headers"]["Authorization"] == f"Bearer {token}"
    assert kwargs["json"]["parameters"].get("storageUri") == storage and kwargs["json"]["parameters"]["generateAudio"] is True
    assert handle["storage_prefix"] == storage


@pytest.mark.faults
def test_vertex_without_credentials_is_access_denied(monkeypatch):
    import google.auth
    import google.auth.exceptions

    from veorelay.config import ProviderSettings
    from veorelay.core.errors import PermanentError
    from veorelay.core.request import parse_request

    def no_credentials(**kwargs):
        raise google.auth.exceptions.DefaultCredentialsError("none")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    adapter = vertex.Vertex(ProviderSettings("vertex", "https://x", None, {"PROJECT": "p"}), Recorder())
    with pytest.raises(PermanentError) as refused:
        adapter.submit("J", parse_request({"prompt": "p"}))
    assert refused.value.code == "access_denied"
