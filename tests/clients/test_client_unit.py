"""The Python client (clients/python, veorelay_client) over a fake transport (httpx.MockTransport):
what it sends for each call, how it reads each answer, its typed errors, retries, the event
stream and its fallback, downloads and webhook verification. No server, no network."""
from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
from email.parser import BytesParser
from email.policy import HTTP

import google_crc32c
import httpx
import pytest
import standardwebhooks
import veorelay_client.client as client_module
from veorelay_client import (
    ApiError,
    Client,
    Conflict,
    DownloadError,
    Image,
    InvalidRequest,
    NetworkError,
    NotFound,
    Reference,
    UnsupportedOption,
    WaitTimeout,
    WebhookVerificationError,
    verify_webhook,
)
from veorelay_client.sse import parse

URL = "https://relay.example"
KEY = "vr_test_key"
JOB_ID = "a" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24


def view(status="accepted", percent=0, stage=None, outputs=(), error=None, **extra):
    return {"id": JOB_ID, "status": status, "provider": "litellm-gemini", "model": "veo-3.0-generate-preview",
            "request": {"prompt": "a cat"}, "metadata": None, "progress": {"percent": percent, "stage": stage or status},
            "outputs": list(outputs), "error": error, "created_at": "2026-12-01T10:00:00.5Z",
            "updated_at": "2026-12-01T10:00:01Z", "timestamps": {}, **extra}


class Api:
    """A scripted API: `routes` maps (method, path) to a list of answers, used in turn (the last repeats)."""

    def __init__(self, routes):
        self.routes = {key: list(answers) for key, answers in routes.items()}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such endpoint", "field": None}})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request) if callable(answer) else answer

    def client(self, **kwargs) -> Client:
        return Client(URL, KEY, transport=httpx.MockTransport(self), **kwargs)

    def sent(self, method, path):
        return [r for r in self.requests if r.method == method and r.url.path == path]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Backoffs and poll pauses are recorded, not slept."""
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return slept


def multipart(request: httpx.Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """{part name: (filename, content type, bytes)} of a multipart/form-data request."""
    request.read()
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
    return parts


# ------------------------------------------------------------------------------------------ submit
def test_submit_sends_every_option_as_json_with_the_key_and_an_idempotency_key():
    api = Api({("POST", "/jobs"): [httpx.Response(202, json=view())]})
    job = api.client().submit(
        "a cat", provider="gemini", model="veo-3.1-generate-preview", negative_prompt="dogs", aspect_ratio="9:16",
        duration_seconds=8, resolution="1080p", sample_count=2, seed=7, person_generation="allow_adult",
        generate_audio=False, webhook_url="https://hooks.example/x", webhook_events=["job.succeeded"],
        metadata={"order": 8812}, deadline_seconds=600, image="gs://clients-bucket/uploads/demo/first.png",
        last_frame="https://img.example/last.png", extra={"future_field": 1},
    )
    (request,) = api.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert len(request.headers["idempotency-key"]) == 32
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "prompt": "a cat", "provider": "gemini", "model": "veo-3.1-generate-preview", "negative_prompt": "dogs",
        "aspect_ratio": "9:16", "duration_seconds": 8, "resolution": "1080p", "sample_count": 2, "seed": 7,
        "person_generation": "allow_adult", "generate_audio": False, "webhook_url": "https://hooks.example/x",
        "webhook_events": ["job.succeeded"], "metadata": {"order": 8812}, "deadline_seconds": 600,
        "image": {"gcs_uri": "gs://clients-bucket/uploads/demo/first.png"}, "last_frame": {"url": "https://img.example/last.png"},
        "future_field": 1,
    }
    assert job.id == JOB_ID and job.status == "accepted" and job.progress.percent == 0
    assert job.created_at is not None and job.created_at.microsecond == 500000
    assert not job.terminal


def test_submit_uploads_files_and_bytes_as_multipart_parts(tmp_path):
    first = tmp_path / "first.png"
    first.write_bytes(PNG)
    api = Api({("POST", "/jobs"): [httpx.Response(202, json=view())]})
    api.client().submit("a cat", image=first, last_frame=JPEG,
                        reference_images=[str(first), Reference(JPEG, "style")], idempotency_key="order-1")
    (request,) = api.requests
    assert request.headers["idempotency-key"] == "order-1"
    parts = multipart(request)
    assert json.loads(parts["request"][2]) == {
        "prompt": "a cat", "image": {"upload": "image"}, "last_frame": {"upload": "last_frame"},
        "reference_images": [{"image": {"upload": "reference_0"}, "type": "asset"},
                             {"image": {"upload": "reference_1"}, "type": "style"}],
    }
    assert parts["image"] == ("first.png", "image/png", PNG)
    assert parts["last_frame"][1:] == ("image/jpeg", JPEG)
    assert parts["reference_0"][2] == PNG and parts["reference_1"][2] == JPEG


def test_inline_images_go_as_base64_json():
    api = Api({("POST", "/jobs"): [httpx.Response(202, json=view())]})
    api.client().submit("a cat", image=PNG, reference_images=[Image(data=JPEG)], inline_images=True)
    body = json.loads(api.requests[0].content)
    assert body["image"] == {"base64": base64.b64encode(PNG).decode(), "mime_type": "image/png"}
    assert body["reference_images"] == [{"image": {"base64": base64.b64encode(JPEG).decode(), "mime_type": "image/jpeg"}, "type": "asset"}]


def test_submit_refuses_an_unknown_option_before_sending():
    api = Api({})
    with pytest.raises(TypeError, match="aspect"):
        api.client().submit("a cat", aspect="16:9")  # type: ignore[call-arg]
    assert api.requests == []


def test_extend_names_the_job_and_prefer_wait_is_sent():
    api = Api({("POST", "/jobs"): [httpx.Response(202, json=view(extends={"job_id": "b" * 32, "output": 0}))]})
    job = api.client().extend("b" * 32, "the cat jumps", wait=30)
    request = api.requests[0]
    assert json.loads(request.content) == {"prompt": "the cat jumps", "extend": {"job_id": "b" * 32}}
    assert request.headers["prefer"] == "wait=30"
    assert job.extends == {"job_id": "b" * 32, "output": 0}
    with pytest.raises(ValueError):
        api.client().get(JOB_ID, wait=61)


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(("status", "error", "kind"), [
    (404, {"code": "not_found", "message": "no such job", "field": "id"}, NotFound),
    (400, {"code": "unsupported_option", "message": "this provider does not support seed", "field": "seed"}, UnsupportedOption),
    (409, {"code": "conflict", "message": "the job succeeded", "field": None}, Conflict),
    # the /v1/videos routes answer in OpenAI's shape
    (400, {"message": "size must be one of ...", "type": "invalid_request_error", "param": "size", "code": "invalid_request"}, InvalidRequest),
])
def test_an_error_answer_is_a_typed_error_with_the_apis_code(status, error, kind):
    api = Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(status, json={"error": error})]})
    with pytest.raises(kind) as caught:
        api.client().get(JOB_ID)
    assert caught.value.status == status
    assert caught.value.code == error["code"]
    assert caught.value.field == error.get("field", error.get("param"))
    assert caught.value.message == error["message"]


def test_unavailable_is_retried_after_its_retry_after(no_sleep):
    api = Api({("GET", f"/jobs/{JOB_ID}"): [
        httpx.Response(503, headers={"Retry-After": "3"}, json={"error": {"code": "unavailable", "message": "busy", "field": None}}),
        httpx.Response(200, json=view("running")),
    ]})
    assert api.client().get(JOB_ID).status == "running"
    assert no_sleep == [3.0]
    assert len(api.requests) == 2


def test_a_proxy_error_page_after_the_retries_is_an_api_error_with_the_status():
    api = Api({("POST", f"/jobs/{JOB_ID}:cancel"): [httpx.Response(502, text="<html>Bad Gateway</html>")]})
    with pytest.raises(ApiError) as caught:
        api.client(max_retries=1).cancel(JOB_ID)
    assert (caught.value.status, caught.value.code) == (502, "http_502")
    assert "Bad Gateway" in caught.value.message
    assert len(api.requests) == 2


def test_an_unreachable_api_is_a_network_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    client = Client(URL, KEY, transport=httpx.MockTransport(refuse), max_retries=0)
    with pytest.raises(NetworkError, match="cannot connect"):
        client.providers()


def test_a_job_id_cannot_reach_another_route():
    with pytest.raises(Exception, match="not a job id"):
        Api({}).client().get("../providers")


def test_url_and_key_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VEORELAY_URL", URL + "/")
    monkeypatch.setenv("VEORELAY_API_KEY", KEY)
    assert Client().url == URL
    monkeypatch.delenv("VEORELAY_API_KEY")
    with pytest.raises(ValueError, match="VEORELAY_API_KEY"):
        Client()


# ------------------------------------------------------------------------------------------ listing
def test_list_follows_the_cursor_and_stops_at_the_limit():
    page1 = {"jobs": [view() | {"id": f"{i:032x}"} for i in range(3)], "next_cursor": "c1"}
    page2 = {"jobs": [view() | {"id": f"{i:032x}"} for i in range(3, 5)], "next_cursor": None}
    api = Api({("GET", "/jobs"): [lambda r: httpx.Response(200, json=page2 if r.url.params.get("cursor") == "c1" else page1)]})
    jobs = list(api.client().list(status="succeeded", provider="gemini", created_after="2026-12-01T00:00:00Z", page_size=3))
    assert [j.id for j in jobs] == [f"{i:032x}" for i in range(5)]
    first, second = api.requests
    assert dict(first.url.params) == {"limit": "3", "status": "succeeded", "provider": "gemini", "created_after": "2026-12-01T00:00:00Z"}
    assert second.url.params["cursor"] == "c1"
    api.requests.clear()
    assert len(list(api.client().list(limit=2, page_size=3))) == 2
    assert [r.url.params["limit"] for r in api.requests] == ["2"]


# ------------------------------------------------------------------------------------------ events, wait
def sse(*events, comments=True):
    chunks = ["retry: 1000\n\n"]
    for event_id, kind, data in events:
        if comments:
            chunks.append(": keep-alive\n\n")
        chunks.append(f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n")
    return "".join(chunks).encode()


def stream_answer(body: bytes, broken_after: int | None = None):
    def answer(request):
        def chunks():
            for i, line in enumerate(body.splitlines(keepends=True)):
                if broken_after is not None and i >= broken_after:
                    raise httpx.ReadError("connection reset", request=request)
                yield line
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=chunks())
    return answer


def test_the_sse_parser():
    lines = ["retry: 500", "", ": comment", "id: 7", "event: job.progress", "data: {\"a\":", "data: 1}", "",
             "data: no event name", "", "id: 8", "event: lost", "data: unterminated"]
    messages = list(parse(lines))
    assert [(m.event, m.data, m.id) for m in messages] == [("job.progress", '{"a":\n1}', "7"), ("message", "no event name", "7")]


def test_events_resume_with_last_event_id_after_a_break():
    first = sse((1, "job.accepted", view()), (2, "job.running", view("running", 10)))
    rest = sse((3, "job.progress", view("running", 60)), (4, "job.succeeded", view("succeeded", 100)))
    # the first connection breaks after its two events, in the middle of a third (never dispatched)
    broken = stream_answer(first + b"id: 9\nevent: job.progress\n", broken_after=first.count(b"\n") + 1)
    api = Api({("GET", f"/jobs/{JOB_ID}/events"): [broken, stream_answer(rest)]})
    events = list(api.client().events(JOB_ID))
    assert [(e.id, e.type, e.job.status, e.job.progress.percent) for e in events] == [
        ("1", "job.accepted", "accepted", 0), ("2", "job.running", "running", 10),
        ("3", "job.progress", "running", 60), ("4", "job.succeeded", "succeeded", 100)]
    connections = api.sent("GET", f"/jobs/{JOB_ID}/events")
    assert "last-event-id" not in connections[0].headers
    assert connections[1].headers["last-event-id"] == "2"
    assert connections[0].headers["accept"] == "text/event-stream"


def test_wait_reports_each_change_and_returns_the_ended_job():
    body = sse((1, "job.accepted", view()), (2, "job.running", view("running", None, "starting")),
               (3, "job.progress", view("running", 50)), (4, "job.succeeded", view("succeeded", 100)))
    api = Api({("GET", f"/jobs/{JOB_ID}/events"): [stream_answer(body)]})
    seen = []
    job = api.client().wait(JOB_ID, on_progress=lambda j: seen.append((j.status, j.progress.percent, j.progress.stage)))
    assert job.succeeded
    assert seen == [("accepted", 0, "accepted"), ("running", None, "starting"), ("running", 50, "running"), ("succeeded", 100, "succeeded")]


def test_wait_polls_with_prefer_wait_where_there_is_no_event_stream():
    api = Api({("GET", f"/jobs/{JOB_ID}"): [
        httpx.Response(200, json=view("running", 20), headers={"Preference-Applied": "wait=5"}),
        httpx.Response(200, json=view("failed", 20, error={"code": "rai_filtered", "message": "filtered"})),
    ]})
    job = api.client().wait(JOB_ID)
    assert job.status == "failed" and job.error is not None and job.error.code == "rai_filtered"
    polls = api.sent("GET", f"/jobs/{JOB_ID}")
    assert [r.headers["prefer"] for r in polls] == ["wait=5", "wait=5"]


def test_wait_falls_back_to_polling_when_the_stream_keeps_breaking():
    broken = stream_answer(sse((1, "job.running", view("running", 10))), broken_after=2)
    api = Api({("GET", f"/jobs/{JOB_ID}/events"): [broken],
               ("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("succeeded", 100))]})
    assert api.client().wait(JOB_ID).succeeded
    assert len(api.sent("GET", f"/jobs/{JOB_ID}/events")) == 4  # the first try and 3 reconnects


def test_wait_for_a_job_that_does_not_exist_raises_not_found():
    missing = httpx.Response(404, json={"error": {"code": "not_found", "message": "no such job", "field": "id"}})
    api = Api({("GET", f"/jobs/{JOB_ID}/events"): [missing]})
    with pytest.raises(NotFound):
        api.client().wait(JOB_ID)
    assert api.sent("GET", f"/jobs/{JOB_ID}") == []


def test_wait_gives_up_at_its_timeout_with_the_job_as_last_seen(monkeypatch):
    clock = iter(range(0, 10_000, 2))
    monkeypatch.setattr(client_module.time, "monotonic", lambda: float(next(clock)))
    api = Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("running", 30))]})
    with pytest.raises(WaitTimeout) as caught:
        api.client().wait(JOB_ID, timeout=25)
    assert caught.value.job is not None and caught.value.job.progress.percent == 30


# ------------------------------------------------------------------------------------------ download
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def crc32c(data: bytes) -> str:
    """As Cloud Storage reports an object's crc32c: base64 of the big-endian CRC32C."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def output(index=0, data=VIDEO, **extra):
    """An output as the server records it: Cloud Storage's crc32c and md5, no sha256 unless given."""
    return {"index": index, "uri": f"gs://bucket/videos/{JOB_ID}/{index}.mp4", "name": f"videos/{JOB_ID}/{index}.mp4",
            "size": len(data), "crc32c": crc32c(data), "md5": md5(data), "content_type": "video/mp4", **extra}


DAMAGED = VIDEO[:-1] + b"!"  # the same size, one byte changed


def downloading(recorded: dict, served: bytes) -> Api:
    return Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("succeeded", 100, outputs=[recorded]))],
                ("GET", f"/v1/videos/{JOB_ID}/content"): [httpx.Response(200, content=served)]})


def test_download_streams_the_content_route_and_checks_it(tmp_path):
    api = Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("succeeded", 100, outputs=[output(0), output(1)]))],
               ("GET", f"/v1/videos/{JOB_ID}/content"): [httpx.Response(200, content=VIDEO, headers={"Content-Type": "video/mp4"})]})
    progress = []
    saved = api.client().download(JOB_ID, tmp_path, index=1, on_progress=lambda done, total: progress.append((done, total)))
    assert saved == tmp_path / f"{JOB_ID}-1.mp4"
    assert saved.read_bytes() == VIDEO
    (request,) = api.sent("GET", f"/v1/videos/{JOB_ID}/content")
    assert dict(request.url.params) == {"variant": "video", "index": "1"}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert progress[0] == (0, len(VIDEO)) and progress[-1] == (len(VIDEO), len(VIDEO))


def test_the_output_has_the_checksums_the_job_recorded():
    api = downloading(output(sha256=hashlib.sha256(VIDEO).hexdigest()), VIDEO)
    (recorded,) = api.client().get(JOB_ID).outputs
    assert (recorded.crc32c, recorded.md5, recorded.sha256) == (crc32c(VIDEO), md5(VIDEO), hashlib.sha256(VIDEO).hexdigest())
    (default,) = downloading(output(), VIDEO).client().get(JOB_ID).outputs
    assert default.sha256 is None and default.crc32c == crc32c(VIDEO)


@pytest.mark.parametrize("recorded, checked", [
    (output(), "md5"),  # what every job records: Cloud Storage's md5 and crc32c
    (output(sha256=hashlib.sha256(VIDEO).hexdigest()), "sha256"),  # a deployment with VEO_OUTPUT_SHA256
    (output(md5=None), "crc32c"),  # an object without an md5 (a composite one)
])
def test_a_damaged_download_leaves_no_file(tmp_path, recorded, checked):
    with pytest.raises(DownloadError, match=f"download's {checked} differs") as caught:
        downloading(recorded, DAMAGED).client().download(JOB_ID, tmp_path / "v.mp4")
    assert caught.value.damaged
    assert list(tmp_path.iterdir()) == []
    assert downloading(recorded, VIDEO).client().download(JOB_ID, tmp_path / "v.mp4").read_bytes() == VIDEO


def test_without_google_crc32c_a_job_with_only_a_crc32c_is_checked_by_its_size(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # not installed: importing it fails
    recorded = output(md5=None)
    assert downloading(recorded, DAMAGED).client().download(JOB_ID, tmp_path / "v.mp4").read_bytes() == DAMAGED
    with pytest.raises(DownloadError, match="bytes, the job recorded") as caught:
        downloading(recorded, VIDEO[:-1]).client().download(JOB_ID, tmp_path / "w.mp4")
    assert caught.value.damaged and not (tmp_path / "w.mp4").exists()


def test_a_job_that_recorded_no_checksum_is_checked_by_its_size(tmp_path):
    recorded = {k: v for k, v in output().items() if k not in ("crc32c", "md5")}
    assert downloading(recorded, DAMAGED).client().download(JOB_ID, tmp_path / "v.mp4").read_bytes() == DAMAGED
    with pytest.raises(DownloadError, match="bytes, the job recorded") as caught:
        downloading(recorded, VIDEO + b"!").client().download(JOB_ID, tmp_path / "w.mp4")
    assert caught.value.damaged and list(tmp_path.iterdir()) == [tmp_path / "v.mp4"]


def test_a_signed_url_is_fetched_without_the_api_key(tmp_path):
    signed = "https://storage.example/bucket/videos/x.mp4?X-Goog-Signature=abc"
    api = Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("succeeded", 100, outputs=[output(signed_url=signed)]))],
               ("GET", "/bucket/videos/x.mp4"): [httpx.Response(200, content=VIDEO)]})
    saved = api.client().download(JOB_ID, tmp_path / "v.mp4")
    assert saved.read_bytes() == VIDEO
    (request,) = api.sent("GET", "/bucket/videos/x.mp4")
    assert "authorization" not in request.headers
    assert api.sent("GET", f"/v1/videos/{JOB_ID}/content") == []


def test_download_of_a_job_without_video_says_so(tmp_path):
    api = Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("failed"))]})
    with pytest.raises(DownloadError, match="failed") as caught:
        api.client().download(JOB_ID, tmp_path)
    assert not caught.value.damaged


def test_the_poster_variant_and_the_media_details(tmp_path):
    poster = {"uri": f"gs://bucket/videos/{JOB_ID}/0.jpg", "name": f"videos/{JOB_ID}/0.jpg", "size": len(JPEG), "content_type": "image/jpeg"}
    media = {"duration_seconds": 8.0, "width": 1280, "height": 720, "video_codec": "h264", "audio_codec": None, "has_audio": False}
    api = Api({("GET", f"/jobs/{JOB_ID}"): [httpx.Response(200, json=view("succeeded", 100, outputs=[output(poster=poster, media=media)]))],
               ("GET", f"/v1/videos/{JOB_ID}/content"): [httpx.Response(200, content=JPEG)]})
    client = api.client()
    job = client.get(JOB_ID)
    assert job.outputs[0].media is not None and job.outputs[0].media.width == 1280
    assert job.outputs[0].poster is not None and job.outputs[0].poster.content_type == "image/jpeg"
    saved = client.download(JOB_ID, tmp_path, variant="poster")
    assert saved == tmp_path / f"{JOB_ID}-0.jpg" and saved.read_bytes() == JPEG
    assert dict(api.sent("GET", f"/v1/videos/{JOB_ID}/content")[0].url.params) == {"variant": "thumbnail"}


# ------------------------------------------------------------------------------------------ webhooks
SECRET = "whsec_" + base64.b64encode(b"a-test-secret-of-32-bytes-long!!").decode()


def signed(body: str, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    signature = standardwebhooks.Webhook(secret).sign("msg_1", stamp, body)
    return {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(int(stamp.timestamp())), "Webhook-Signature": signature}


def test_a_webhook_signed_by_standardwebhooks_verifies():
    body = json.dumps({"type": "job.succeeded", "data": view("succeeded")})
    assert verify_webhook(body.encode(), signed(body), SECRET)["type"] == "job.succeeded"
    # during a rotation: the old secret still verifies, either order
    other = "whsec_" + base64.b64encode(b"another-secret").decode()
    assert Client.verify_webhook(body, signed(body), [other, SECRET])["data"]["id"] == JOB_ID


@pytest.mark.parametrize(("change", "message"), [
    (lambda body, headers: (body.replace("succeeded", "failed"), headers), "no signature matches"),
    (lambda body, headers: (body, {**headers, "Webhook-Signature": "v1,AAAA"}), "no signature matches"),
    (lambda body, headers: (body, {k: v for k, v in headers.items() if k != "Webhook-Id"}), "webhook-id"),
    (lambda body, headers: (body, signed(body, at=time.time() - 3600)), "from now"),
])
def test_a_changed_or_stale_webhook_does_not_verify(change, message):
    body = json.dumps({"type": "job.succeeded", "data": view("succeeded")})
    body, headers = change(body, signed(body))
    with pytest.raises(WebhookVerificationError, match=message):
        verify_webhook(body, headers, SECRET)


def test_what_this_verifier_accepts_standardwebhooks_accepts():
    body = json.dumps({"type": "job.running", "data": view("running")})
    headers = signed(body)
    verify_webhook(body, headers, SECRET)
    assert standardwebhooks.Webhook(SECRET).verify(body, headers)["type"] == "job.running"


def test_a_deployment_url_with_a_path_keeps_it():
    """Cloud Functions (1st gen) serve the api function under /api: every route goes below it."""
    seen = []
    client = Client("https://us-central1-proj.cloudfunctions.net/api/", KEY,
                    transport=httpx.MockTransport(lambda r: seen.append(str(r.url)) or httpx.Response(200, json={"providers": {}})))
    client.providers()
    assert seen == ["https://us-central1-proj.cloudfunctions.net/api/providers"]
