"""Images and bodies through the api entry point (functions-framework test client) over the real
emulators: hostile images are refused naming their field and leave not one object; gs:// images
only from the client's uploads/<client id>/ folder or a listed bucket; a later request with the
same Idempotency-Key never uses an earlier one's bytes; the key and the declared size are
refused before the body is read, and a body that does not arrive in time gets 408."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from tests.steps.image_files import HOSTILE, jpeg, png

pytestmark = pytest.mark.integration

RED, BLUE = png(colour=(255, 0, 0)), png(colour=(0, 0, 255))
CLIENT = "demo"  # the client of the stack's dev API key, which `call("api")` sends
BODY_TIMEOUT_S = 3.0  # tests/conftest.py INPUTS_AND_BODIES


def b64(data: bytes, mime: str = "image/png") -> dict[str, str]:
    return {"base64": base64.b64encode(data).decode(), "mime_type": mime}


def prompt() -> str:
    return f"a calm lake at dawn #{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def gcs(function_env):
    return storage.Client(project=function_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": function_env["STORAGE_EMULATOR_HOST"]})


@pytest.fixture(scope="module")
def bucket(gcs, function_env):
    return gcs.bucket(function_env["VEO_BUCKET"])


@pytest.fixture(scope="module")
def clients_bucket(gcs):
    """A client's own bucket, listed in VEO_INPUT_BUCKETS (tests/conftest.py)."""
    found = gcs.bucket("a-clients-own-bucket")
    return found if found.exists() else gcs.create_bucket("a-clients-own-bucket")


def objects(bucket) -> set[str]:
    """Every object veo-relay keeps for clients' inputs (what a refused request must not add to)."""
    return {b.name for b in bucket.list_blobs(prefix="inputs/")} | {b.name for b in bucket.list_blobs(prefix="uploads/")}


def jobs_with(jobs_collection, text: str) -> list[str]:
    return [s.id for s in jobs_collection.where(filter=firestore.FieldFilter("request.prompt", "==", text)).stream()]


def multipart(request: dict, files: dict[str, bytes]) -> dict:
    return {"data": {"request": json.dumps(request), **{name: (io.BytesIO(data), f"{name}.png") for name, data in files.items()}},
            "content_type": "multipart/form-data"}


HOSTILE_CASES = ["png-then-zip", "jpeg-then-a-png", "png-truncated", "jpeg-without-eoi", "webp-then-html", "png-bomb-declared",
                 "png-animated", "png-broken-pixel-stream", "magic-only-png"]


@pytest.mark.badinput
@pytest.mark.parametrize("name", HOSTILE_CASES)
@pytest.mark.parametrize("how", ["json", "multipart"])
def test_a_hostile_image_is_refused_naming_its_field_and_leaves_no_object(call, bucket, jobs_collection, name, how):
    bad, words = HOSTILE[name]
    text, before = prompt(), objects(bucket)
    if how == "json":
        resp = call("api").post("/jobs", json={"prompt": text, "provider": "gemini", "model": "veo-3.1-generate-preview",
                                               "image": b64(RED), "last_frame": b64(bad)})
    else:
        resp = call("api").post("/jobs", **multipart({"prompt": text, "provider": "gemini", "model": "veo-3.1-generate-preview"},
                                                     {"image": RED, "last_frame": bad}))
    error = resp.get_json()["error"]
    assert (resp.status_code, error["code"], error["field"]) == (400, "invalid_request", "last_frame"), error
    assert words in error["message"]
    assert objects(bucket) == before and jobs_with(jobs_collection, text) == []


@pytest.mark.badinput
def test_a_declared_type_that_is_not_what_decodes_is_refused(call, bucket):
    before = objects(bucket)
    resp = call("api").post("/jobs", json={"prompt": prompt(), "provider": "gemini", "image": b64(jpeg(), "image/png")})
    error = resp.get_json()["error"]
    assert (resp.status_code, error["field"]) == (400, "image.mime_type") and objects(bucket) == before


@pytest.mark.badinput
@pytest.mark.parametrize("where", [
    "gs://{own}/inputs/0123456789abcdef0123456789abcdef/image-00.png",  # another job's input
    "gs://{own}/uploads/other/frame.png",  # another client's folder
    "gs://{own}/uploads/demo/../other/frame.png",
    "gs://{own}/videos/0123456789abcdef0123456789abcdef/0.mp4",
    "gs://not-a-listed-bucket/frame.png",
])
def test_a_gcs_image_the_deployment_does_not_allow_is_refused(call, bucket, jobs_collection, where):
    bucket.blob("uploads/other/frame.png").upload_from_string(RED, content_type="image/png")
    text, before = prompt(), objects(bucket)
    resp = call("api").post("/jobs", json={"prompt": text, "provider": "gemini", "image": {"gcs_uri": where.format(own=bucket.name)}})
    error = resp.get_json()["error"]
    assert (resp.status_code, error["code"], error["field"]) == (400, "invalid_request", "image.gcs_uri"), error
    assert objects(bucket) == before and jobs_with(jobs_collection, text) == []


def test_a_gcs_image_in_the_clients_own_folder_or_a_listed_bucket_is_copied_in(call, bucket, clients_bucket):
    bucket.blob(f"uploads/{CLIENT}/frames/first.png").upload_from_string(RED, content_type="image/png")
    clients_bucket.blob("frames/last.png").upload_from_string(BLUE, content_type="application/octet-stream")
    resp = call("api").post("/jobs", json={
        "prompt": prompt(), "provider": "gemini", "model": "veo-3.1-generate-preview",
        "image": {"gcs_uri": f"gs://{bucket.name}/uploads/{CLIENT}/frames/first.png"},
        "last_frame": {"gcs_uri": "gs://a-clients-own-bucket/frames/last.png"}})
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    names = {f: job["request"][f]["gcs_uri"].split("/", 3)[3] for f in ("image", "last_frame")}
    assert names == {"image": f"inputs/{job['id']}/image-{hashlib.sha256(RED).hexdigest()[:32]}.png",
                     "last_frame": f"inputs/{job['id']}/last_frame-{hashlib.sha256(BLUE).hexdigest()[:32]}.png"}
    assert bucket.blob(names["image"]).download_as_bytes() == RED and bucket.blob(names["last_frame"]).download_as_bytes() == BLUE
    stored = bucket.get_blob(names["image"])
    assert stored.metadata == {"sha256": hashlib.sha256(RED).hexdigest(), "width": "16", "height": "12"}
    call("api").post(f"/jobs/{job['id']}:cancel")


@pytest.mark.badinput
def test_a_later_request_with_the_same_key_uses_only_its_own_bytes(call, bucket):
    key = f"order-{uuid.uuid4().hex}"
    fields = {"provider": "gemini", "model": "veo-3.1-generate-preview"}
    before = objects(bucket)
    resp = call("api").post("/jobs", headers={"Idempotency-Key": key},
                            json={"prompt": prompt(), **fields, "image": b64(RED), "last_frame": b64(HOSTILE["png-then-zip"][0])})
    assert resp.status_code == 400 and objects(bucket) == before  # the good first frame was not written either

    resp = call("api").post("/jobs", headers={"Idempotency-Key": key}, json={"prompt": prompt(), **fields, "image": b64(BLUE)})
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    assert objects(bucket) - before == {f"inputs/{job['id']}/image-{hashlib.sha256(BLUE).hexdigest()[:32]}.png"}
    assert bucket.blob(job["request"]["image"]["gcs_uri"].split("/", 3)[3]).download_as_bytes() == BLUE

    resp = call("api").post("/jobs", headers={"Idempotency-Key": key}, json={"prompt": prompt(), **fields, "image": b64(RED)})
    assert (resp.status_code, resp.get_json()["error"]["field"]) == (409, "Idempotency-Key")
    assert objects(bucket) - before == {f"inputs/{job['id']}/image-{hashlib.sha256(BLUE).hexdigest()[:32]}.png"}
    call("api").post(f"/jobs/{job['id']}:cancel")


# ---------------------------------------------------------------------------- bodies


class RecordingStream(io.RawIOBase):
    """A body that counts how much of it was read."""

    def __init__(self, data: bytes, delay_s: float = 0.0):
        self._data, self._pos, self._delay_s = data, 0, delay_s
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._delay_s:
            time.sleep(self._delay_s)
        n = min(len(b), len(self._data) - self._pos, 1 if self._delay_s else len(b))  # slow: one byte at a time
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        self.read_bytes += n
        return n


def raw_body(stream: RecordingStream, declared: int) -> dict:
    """The WSGI environ of a body given as that stream, with that Content-Length (what a server hands over)."""
    return {"wsgi.input": stream, "CONTENT_LENGTH": str(declared)}


@pytest.fixture(scope="module")
def anonymous(function_env):
    from functions_framework import create_app

    from .conftest import SOURCE

    return create_app(target="api", source=SOURCE).test_client()


@pytest.mark.badinput
@pytest.mark.parametrize("who,content_type,declared,status", [
    ("anonymous", "application/json", 50 * 1024 * 1024, 401),
    ("demo", "application/json", 1024 * 1024 + 1, 413),
    ("demo", "multipart/form-data; boundary=x", 32 * 1024 * 1024 + 1, 413),
    ("demo", "text/plain", 10, 415),
])
def test_the_key_and_the_declared_size_are_refused_before_a_byte_is_read(call, anonymous, who, content_type, declared, status):
    body = RecordingStream(b'{"prompt": "' + b"x" * 4096)
    client = anonymous if who == "anonymous" else call("api")
    resp = client.post("/jobs", content_type=content_type, environ_overrides=raw_body(body, declared))
    assert resp.status_code == status, resp.get_json()
    assert body.read_bytes == 0


@pytest.mark.badinput
def test_a_body_that_does_not_arrive_in_time_gets_408(call, jobs_collection):
    text = prompt()
    data = json.dumps({"prompt": text}).encode()
    body = RecordingStream(data, delay_s=0.25)  # a byte every 0.25 s: the whole body would take ~10 s
    started = time.monotonic()
    resp = call("api").post("/jobs", content_type="application/json", environ_overrides=raw_body(body, len(data)))
    elapsed = time.monotonic() - started
    error = resp.get_json()["error"]
    assert (resp.status_code, error["code"]) == (408, "invalid_request") and "did not arrive" in error["message"]
    assert BODY_TIMEOUT_S - 0.5 <= elapsed < BODY_TIMEOUT_S + 2 and body.read_bytes < len(data)
    assert jobs_with(jobs_collection, text) == []


@pytest.mark.badinput
def test_a_body_shorter_than_its_declared_length_is_a_400_not_a_500(call):
    resp = call("api").post("/jobs", content_type="application/json", environ_overrides=raw_body(RecordingStream(b'{"prompt": "p"}'), 100))
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (400, "invalid_request")
