"""Input images: inline, uploaded, by URL or gs:// URI, they land in the bucket under
inputs/<job id>/<slot>-<sha256 prefix>.<ext> and the job holds only their gs:// URI; bad images
are refused with a 400."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from .helpers import Client, unique_prompt
from .provider_helpers import assert_videos_match_the_provider, image_server, inline, png, provider_calls
from .reliability import jobs_with_prompt

pytestmark = pytest.mark.integration

RED, BLUE = png(rgb=b"\xff\x00\x00"), png(rgb=b"\x00\x00\xff")


@pytest.fixture(scope="module")
def user_bucket(stack):
    """A client's own bucket (not veo-relay's), holding an image it names by gs:// URI."""
    gcs = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials(),
                         client_options={"api_endpoint": stack.env["STORAGE_EMULATOR_HOST"]})
    user = gcs.bucket("a-clients-own-bucket")
    if not user.exists():
        user = gcs.create_bucket("a-clients-own-bucket")
    user.blob("frames/first.png").upload_from_string(BLUE, content_type="application/octet-stream")
    user.blob("notes.txt").upload_from_string(b"not an image at all", content_type="image/png")
    return user


def multipart(client: Client, request: dict, files: list[tuple[str, tuple[str, bytes, str]]]) -> requests.Response:
    return requests.post(f"{client.api}/jobs", headers=client.auth, timeout=30,
                         files=[("request", (None, json.dumps(request), "application/json")), *files])


def input_uri(bucket, job_id: str, slot: str, data: bytes) -> str:
    return f"gs://{bucket.name}/inputs/{job_id}/{slot}-{hashlib.sha256(data).hexdigest()[:32]}.png"


def stored(bucket, uri: str) -> bytes:
    assert uri.startswith(f"gs://{bucket.name}/inputs/")
    return bucket.blob(uri.split("/", 3)[3]).download_as_bytes()


def test_images_from_every_source_are_stored_by_veo_relay_and_used(client, bucket, user_bucket):
    with image_server({"/frame.png": (200, RED, {"Content-Type": "application/octet-stream"}),
                       "/moved": (302, b"", {"Location": "/frame.png"})}) as site:
        bodies = [
            # served as application/octet-stream: the bytes decide
            {"provider": "gemini", "image": inline(RED), "last_frame": {"url": f"{site}/moved"}},
            {"provider": "vertex", "image": {"gcs_uri": "gs://a-clients-own-bucket/frames/first.png"}},
            {"provider": "newapi", "model": "veo-3.1-generate-preview", "image": inline(RED),
             "reference_images": [{"image": {"url": f"{site}/frame.png"}, "type": "style"}]},
        ]
        ids = []
        for body in bodies:
            resp = client.submit({**body, "prompt": unique_prompt("from a first frame")})
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
    jobs = [client.wait(job_id, timeout_s=90) for job_id in ids]
    for job in jobs:
        assert_videos_match_the_provider(client, bucket, job, 1)
    gemini, vertex, newapi = jobs
    assert gemini["request"]["image"] == {"gcs_uri": input_uri(bucket, gemini["id"], "image", RED), "mime_type": "image/png"}
    assert gemini["model"] == "veo-3.1-generate-preview"  # last_frame chose a model that honours it
    assert stored(bucket, gemini["request"]["image"]["gcs_uri"]) == RED
    assert stored(bucket, gemini["request"]["last_frame"]["gcs_uri"]) == RED  # fetched through the redirect
    assert stored(bucket, vertex["request"]["image"]["gcs_uri"]) == BLUE
    assert newapi["request"]["reference_images"] == [
        {"image": {"gcs_uri": input_uri(bucket, newapi["id"], "reference_0", RED), "mime_type": "image/png"}, "type": "style"}]
    for job in jobs:  # no image bytes in the job: only URIs
        assert "base64" not in json.dumps(job["request"])


def test_a_multipart_job_uploads_its_images(client, bucket):
    prompt = unique_prompt("uploaded frames")
    resp = multipart(client, {"provider": "litellm-gemini", "prompt": prompt, "model": "veo-3.1-generate-preview"},
                     [("image", ("first.png", RED, "image/png")), ("last_frame", ("last.png", BLUE, "image/png"))])
    assert resp.status_code == 202, resp.text
    job = client.wait(resp.json()["id"], timeout_s=90)
    assert_videos_match_the_provider(client, bucket, job, 1)
    assert stored(bucket, job["request"]["image"]["gcs_uri"]) == RED
    assert stored(bucket, job["request"]["last_frame"]["gcs_uri"]) == BLUE

    # genaipro's own endpoints are multipart: ingredients-to-video gets the references as files
    refs = [("reference_images", (f"r{i}.png", png(rgb=bytes([i, i, i])), "image/png")) for i in range(3)]
    resp = multipart(client, {"provider": "genaipro", "prompt": unique_prompt("three ingredients"), "sample_count": 2}, refs)
    assert resp.status_code == 202, resp.text
    job = client.wait(resp.json()["id"], timeout_s=90)
    assert_videos_match_the_provider(client, bucket, job, 2)
    assert [r["type"] for r in job["request"]["reference_images"]] == ["asset"] * 3


def test_flow_turns_frames_into_media_ids_first(client, bucket):
    resp = client.submit({"provider": "flow", "prompt": unique_prompt("from first to last"), "image": inline(RED), "last_frame": inline(BLUE)})
    assert resp.status_code == 202, resp.text
    job = client.wait(resp.json()["id"], timeout_s=90)
    assert_videos_match_the_provider(client, bucket, job, 1)
    assert job["model"] == "veo_3_1_i2v_s_fast_fl"
    assert len(provider_calls(client, job["request"]["prompt"], "image_submit")) == 2  # one mediaId per frame


BAD = [
    ({"image": inline(b"GIF89a not what we take")}, 400, "invalid_request", "image"),
    ({"image": inline(RED, "image/jpeg")}, 400, "invalid_request", "image.mime_type"),  # declared JPEG, decodes as PNG
    ({"image": inline(RED + b"PK\x03\x04 a zip after IEND")}, 400, "invalid_request", "image"),  # a polyglot
    ({"image": inline(RED[:-20])}, 400, "invalid_request", "image"),  # truncated
    ({"image": {"base64": "not base64!", "mime_type": "image/png"}}, 400, "invalid_request", "image.base64"),
    ({"image": {"base64": base64.b64encode(RED).decode()}}, 400, "invalid_request", "image"),  # no mime type
    ({"image": {"url": "https://example.com/a.png", "gcs_uri": "gs://a-bucket/a.png"}}, 400, "invalid_request", "image"),
    ({"last_frame": inline(RED)}, 400, "invalid_request", "last_frame"),
    ({"image": {"url": "http://169.254.169.254/computeMetadata/v1/"}}, 400, "invalid_request", "image.url"),
    ({"image": {"url": "file:///etc/passwd"}}, 400, "invalid_request", "image"),
    ({"image": {"gcs_uri": "gs://veo-relay-local-videos/inputs/someone-else/image.png"}}, 400, "invalid_request", "image.gcs_uri"),
    ({"image": {"gcs_uri": "gs://veo-relay-local-videos/uploads/other/image.png"}}, 400, "invalid_request", "image.gcs_uri"),
    ({"image": {"gcs_uri": "gs://a-bucket-nobody-listed/frame.png"}}, 400, "invalid_request", "image.gcs_uri"),
    ({"image": {"gcs_uri": "gs://a-clients-own-bucket/no-such.png"}}, 400, "invalid_request", "image.gcs_uri"),
    ({"image": {"gcs_uri": "gs://a-clients-own-bucket/notes.txt"}}, 400, "invalid_request", "image"),
    ({"reference_images": [{"image": inline(RED)}] * 4}, 400, "invalid_request", "reference_images"),
    ({"image": {"upload": "nowhere"}}, 400, "invalid_request", "image.upload"),
]


@pytest.mark.badinput
@pytest.mark.parametrize("fields,status,code,field", BAD, ids=[f"{f}-{i}" for i, (_, _, _, f) in enumerate(BAD)])
def test_a_bad_image_is_refused_with_the_field_named(client, stack, user_bucket, fields, status, code, field):
    prompt = unique_prompt("a bad image")
    resp = client.submit({"provider": "gemini", "model": "veo-3.1-generate-preview", "prompt": prompt, **fields})
    error = resp.json()["error"]
    assert (resp.status_code, error["code"], error["field"]) == (status, code, field), error
    # No job was recorded, so no task exists that could ever call the provider.
    assert jobs_with_prompt(stack, prompt) == []
    assert provider_calls(client, prompt) == []


@pytest.mark.badinput
def test_bad_multipart_jobs_are_refused(client):
    resp = requests.post(f"{client.api}/jobs", headers=client.auth, timeout=30, files=[("image", ("a.png", RED, "image/png"))])
    assert (resp.status_code, resp.json()["error"]["field"]) == (400, "request")
    resp = multipart(client, {"provider": "gemini", "prompt": unique_prompt("stray part")}, [("extra", ("a.png", RED, "image/png"))])
    assert (resp.status_code, resp.json()["error"]["field"]) == (400, "extra")
    resp = multipart(client, {"provider": "gemini", "prompt": unique_prompt("huge")},
                     [("image", ("big.png", RED + b"\0" * (8 * 1024 * 1024), "image/png"))])
    assert (resp.status_code, resp.json()["error"]["code"]) == (413, "payload_too_large")
    resp = requests.post(f"{client.api}/jobs", headers={**client.auth, "Content-Type": "multipart/form-data; boundary=x"},
                         data=b"--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{not json\r\n--x--\r\n", timeout=30)
    assert (resp.status_code, resp.json()["error"]["field"]) == (400, "request")
