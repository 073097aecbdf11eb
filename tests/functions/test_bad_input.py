"""Bad input, malformed or hostile: each request gets the documented 4xx (docs/RELIABILITY.md,
"Bad input") with a code and a message, and leaves nothing behind: no job, no input object,
no provider call. The api entry point runs in-process against the real emulators."""
from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest
import requests
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dev.stack import DEV_API_KEYS
from tests.steps.entries import same
from tests.steps.image_files import png

from .conftest import SOURCE

pytestmark = pytest.mark.integration  # the 4xx cases also carry `badinput`

PNG = base64.b64encode(png()).decode()  # a real one: images are decoded (core/images.py)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def job_count(jobs_collection) -> int:
    return jobs_collection.count().get()[0][0].value


@pytest.fixture(scope="module")
def inputs_prefix(function_env):
    from google.cloud import storage

    return storage.Client(project=function_env["GOOGLE_CLOUD_PROJECT"]).bucket(function_env["VEO_BUCKET"])


def input_objects(bucket) -> int:
    return sum(1 for _ in bucket.list_blobs(prefix="inputs/"))


def body(**fields):
    return {"json": {"prompt": "a calm lake at dawn", **fields}}


def raw(data: bytes | str, content_type: str = "application/json"):
    return {"data": data, "content_type": content_type}


def nested(levels: int, leaf=1):
    """`levels` maps, one inside the other: metadata=nested(20) is as deep as Firestore goes."""
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


def shown(key: str) -> str:
    """A long key as an error's field shows it (cut short, core/storable.py render_path)."""
    return key if len(key) <= 80 else key[:80] + "…"


# (id, request kwargs, status, error code, field)
CASES = [
    # Not one plain JSON object
    ("broken-json", raw("{not json"), 400, "invalid_request", None),
    ("empty-body", raw(""), 400, "invalid_request", None),
    ("json-array", raw("[]"), 400, "invalid_request", None),
    ("json-string", raw('"a calm lake"'), 400, "invalid_request", None),
    ("json-null", raw("null"), 400, "invalid_request", None),
    ("nan", raw('{"prompt": "p", "seed": NaN}'), 400, "invalid_request", None),
    ("infinity", raw('{"prompt": "p", "seed": Infinity}'), 400, "invalid_request", None),
    ("duplicate-key", raw('{"prompt": "a lake", "prompt": "a lake [sim:op_error]"}'), 400, "invalid_request", "prompt"),
    ("not-utf8", raw(b'{"prompt": "\xff\xfe"}'), 400, "invalid_request", None),
    ("nested-100k-deep", raw('{"prompt": "p", "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"), 400, "invalid_request", None),
    ("text-plain", raw("prompt=x", "text/plain"), 415, "invalid_request", None),
    ("form-urlencoded", raw("prompt=x", "application/x-www-form-urlencoded"), 415, "invalid_request", None),
    ("body-over-1mib", raw(b"x" * (1024 * 1024 + 1)), 413, "payload_too_large", None),
    ("inline-image-over-body-limit", body(image={"base64": "A" * (1536 * 1024), "mime_type": "image/png"}), 413, "payload_too_large", None),
    # Wrong types (strict: "8" is not 8, true is not 1)
    ("prompt-number", {"json": {"prompt": 123}}, 400, "invalid_request", "prompt"),
    ("prompt-null", {"json": {"prompt": None}}, 400, "invalid_request", "prompt"),
    ("prompt-missing", {"json": {"aspect_ratio": "16:9"}}, 400, "invalid_request", "prompt"),
    ("sample-count-string", body(sample_count="2"), 400, "invalid_request", "sample_count"),
    ("sample-count-bool", body(sample_count=True), 400, "invalid_request", "sample_count"),
    ("sample-count-float", body(sample_count=2.0), 400, "invalid_request", "sample_count"),
    ("duration-string", body(duration_seconds="8"), 400, "invalid_request", "duration_seconds"),
    ("generate-audio-string", body(generate_audio="yes"), 400, "invalid_request", "generate_audio"),
    ("model-number", body(model=5), 400, "invalid_request", "model"),
    ("provider-number", body(provider=7), 400, "invalid_request", "provider"),
    ("metadata-list", body(metadata=["a"]), 400, "invalid_request", "metadata"),
    ("deadline-string", body(deadline_seconds="60"), 400, "invalid_request", "deadline_seconds"),
    # Unknown fields: a misspelt option is an error, never ignored
    ("unknown-field", body(aspect="16:9"), 400, "invalid_request", "aspect"),
    ("field-case", body(Prompt="x"), 400, "invalid_request", "Prompt"),
    ("unknown-in-image", body(image={"base64": PNG, "mime_type": "image/png", "path": "x"}), 400, "invalid_request", "image.path"),
    # Out of range
    ("prompt-blank", {"json": {"prompt": "   "}}, 400, "invalid_request", "prompt"),
    ("prompt-too-long", {"json": {"prompt": "x" * 4001}}, 400, "invalid_request", "prompt"),
    ("negative-prompt-too-long", body(negative_prompt="x" * 4001), 400, "invalid_request", "negative_prompt"),
    ("metadata-too-big", body(metadata={"k": "v" * 3000}), 400, "invalid_request", "metadata"),
    ("sample-count-zero", body(sample_count=0), 400, "invalid_request", "sample_count"),
    ("sample-count-five", body(sample_count=5), 400, "invalid_request", "sample_count"),
    ("seed-negative", body(seed=-1), 400, "invalid_request", "seed"),
    ("seed-2-to-32", body(seed=2**32), 400, "invalid_request", "seed"),
    ("seed-400-digits", raw('{"prompt": "p", "seed": ' + "9" * 400 + "}"), 400, "invalid_request", "seed"),
    ("duration-zero", body(duration_seconds=0), 400, "invalid_request", "duration_seconds"),
    ("aspect-ratio-4-3", body(aspect_ratio="4:3"), 400, "invalid_request", "aspect_ratio"),
    ("resolution-8k", body(resolution="8k"), 400, "invalid_request", "resolution"),
    ("resolution-4k-at-4s", body(resolution="4k", duration_seconds=4), 400, "unsupported_option", "duration_seconds"),  # 4k: 8 s
    ("retired-model", body(model="veo-3.0-generate-preview"), 400, "unsupported_option", "model"),  # the catalog names its replacement
    ("person-generation-everyone", body(person_generation="everyone"), 400, "invalid_request", "person_generation"),
    ("deadline-too-short", body(deadline_seconds=5), 400, "invalid_request", "deadline_seconds"),
    ("deadline-over-a-day", body(deadline_seconds=86401), 400, "invalid_request", "deadline_seconds"),
    ("too-many-reference-images", body(reference_images=[{"image": {"base64": PNG, "mime_type": "image/png"}}] * 4), 400, "invalid_request", "reference_images"),
    # What passes must be storable in Firestore and strict JSON (core/storable.py): refused naming the field
    ("metadata-21-levels", body(metadata=nested(21)), 400, "invalid_request", "metadata." + ".".join(["a"] * 20)),
    ("metadata-array-in-array", body(metadata={"grid": [[1, 2], [3]]}), 400, "invalid_request", "metadata.grid.0"),
    ("metadata-int-2-to-63", body(metadata={"n": 2**63}), 400, "invalid_request", "metadata.n"),
    ("metadata-int-below-minus-2-to-63", body(metadata={"n": [-(2**63) - 1]}), 400, "invalid_request", "metadata.n.0"),
    ("metadata-1e999", raw('{"prompt": "p", "metadata": {"x": 1e999}}'), 400, "invalid_request", "metadata.x"),
    ("metadata-key-empty", body(metadata={"": 1}), 400, "invalid_request", "metadata."),
    ("metadata-key-reserved", body(metadata={"a": {"__name__": 1}}), 400, "invalid_request", "metadata.a.__name__"),
    ("metadata-field-path-1501-bytes", body(metadata={"k" * 745: {"j" * 746: 1}}), 400, "invalid_request",
     f"metadata.{shown('k' * 745)}.{shown('j' * 746)}"),
    ("metadata-lone-surrogate", raw('{"prompt": "p", "metadata": {"a": "x\\ud800"}}'), 400, "invalid_request", "metadata.a"),
    ("metadata-lone-surrogate-key", raw('{"prompt": "p", "metadata": {"\\udfff": 1}}'), 400, "invalid_request", "metadata.\\udfff"),
    ("prompt-lone-surrogate", raw('{"prompt": "a lake \\ud83d"}'), 400, "invalid_request", "prompt"),
    ("unknown-field-lone-surrogate", raw('{"prompt": "p", "\\ud800": 1}'), 400, "invalid_request", "\\ud800"),
    # Prompts: no control characters but newline and tab; something visible
    ("prompt-escape-sequence", {"json": {"prompt": "\x1b[2J a calm lake"}}, 400, "invalid_request", "prompt"),
    ("prompt-nul", {"json": {"prompt": "a calm lake\x00"}}, 400, "invalid_request", "prompt"),
    ("prompt-carriage-return", {"json": {"prompt": "a calm lake\r\nat dawn"}}, 400, "invalid_request", "prompt"),
    ("prompt-c1-control", {"json": {"prompt": "a calm\x9b lake"}}, 400, "invalid_request", "prompt"),
    ("prompt-zero-width-only", {"json": {"prompt": "\u200b\u200c\u200d\ufeff"}}, 400, "invalid_request", "prompt"),
    ("prompt-word-joiner-and-spaces", {"json": {"prompt": " \u2060 \n\t"}}, 400, "invalid_request", "prompt"),
    ("prompt-bidi-controls-only", {"json": {"prompt": "\u202e\u2066"}}, 400, "invalid_request", "prompt"),
    ("prompt-hangul-filler", {"json": {"prompt": "\u3164\u3164"}}, 400, "invalid_request", "prompt"),
    ("negative-prompt-control", body(negative_prompt="no\x07rain"), 400, "invalid_request", "negative_prompt"),
    ("negative-prompt-blank", body(negative_prompt="\u200b "), 400, "invalid_request", "negative_prompt"),
    # The one strict parser (edges/body.py), beyond the cases at the top
    ("duplicate-key-nested", raw('{"prompt": "p", "metadata": {"a": {"b": 1, "b": 1}}}'), 400, "invalid_request", "metadata.a.b"),
    ("minus-infinity", raw('{"prompt": "p", "metadata": {"x": [-Infinity]}}'), 400, "invalid_request", None),
    ("utf8-bom", raw(b'\xef\xbb\xbf{"prompt": "p"}'), 400, "invalid_request", None),
    ("utf8-encoded-surrogate", raw(b'{"prompt": "\xed\xa0\x80"}'), 400, "invalid_request", None),
    ("nested-past-the-parser-limit", raw('{"prompt": "p", "metadata": {"x": ' + "[" * 40 + "]" * 40 + "}}"), 400, "invalid_request", None),
    # What this provider cannot do
    ("provider-unknown", body(provider="nope"), 400, "unsupported_option", "provider"),
    ("model-unknown", body(model="veo-9"), 400, "unsupported_option", "model"),
    ("duration-unsupported", body(duration_seconds=7), 400, "unsupported_option", "duration_seconds"),
    ("audio-unsupported", body(generate_audio=True), 400, "unsupported_option", "generate_audio"),
    # Path tricks in anything that could reach a name
    ("model-path-traversal", body(model="../../etc/passwd"), 400, "invalid_request", "model"),
    ("model-slash", body(model="veo/3"), 400, "invalid_request", "model"),
    # Images that are not images
    ("image-bad-base64", body(image={"base64": "not base64 at all!", "mime_type": "image/png"}), 400, "invalid_request", "image.base64"),
    ("image-text-bytes", body(image={"base64": b64(b"hello, I am not a picture at all"), "mime_type": "image/png"}), 400, "invalid_request", "image"),
    ("image-html-bytes", body(image={"base64": b64(b"<!DOCTYPE html><script>alert(1)</script>"), "mime_type": "image/jpeg"}), 400, "invalid_request", "image"),
    ("image-gif-bytes", body(image={"base64": b64(b"GIF89a" + b"\0" * 64), "mime_type": "image/png"}), 400, "invalid_request", "image"),
    ("image-two-sources", body(image={"base64": PNG, "mime_type": "image/png", "url": "https://example.com/a.png"}), 400, "invalid_request", "image"),
    ("image-mime-svg", body(image={"base64": PNG, "mime_type": "image/svg+xml"}), 400, "invalid_request", "image.mime_type"),
    ("last-frame-bad-after-good-image", body(image={"base64": PNG, "mime_type": "image/png"},
                                            last_frame={"base64": b64(b"%PDF-1.7 not an image"), "mime_type": "image/png"}),
     400, "invalid_request", "last_frame"),
    # SSRF: webhooks may only reach the public internet
    ("webhook-ftp", body(webhook_url="ftp://example.com/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-javascript", body(webhook_url="javascript:alert(1)"), 400, "invalid_request", "webhook_url"),
    ("webhook-metadata-server", body(webhook_url="https://169.254.169.254/computeMetadata/v1/"), 400, "invalid_request", "webhook_url"),
    ("webhook-metadata-decimal", body(webhook_url="https://2852039166/"), 400, "invalid_request", "webhook_url"),
    ("webhook-metadata-v4-in-v6", body(webhook_url="https://[::ffff:169.254.169.254]/"), 400, "invalid_request", "webhook_url"),
    ("webhook-private-10", body(webhook_url="https://10.1.2.3/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-private-192", body(webhook_url="https://192.168.1.1/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-ula-v6", body(webhook_url="https://[fd00::1]/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-zero-address", body(webhook_url="https://0.0.0.0/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-credentials", body(webhook_url="https://user:pass@example.com/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-plain-http", body(webhook_url="http://example.com/hook"), 400, "invalid_request", "webhook_url"),
    ("webhook-too-long", body(webhook_url="https://example.com/" + "a" * 3000), 400, "invalid_request", "webhook_url"),
    ("webhook-events-without-url", body(webhook_events=["job.succeeded"]), 400, "invalid_request", "webhook_events"),
    ("image-url-metadata-server", body(image={"url": "https://169.254.169.254/latest/meta-data/"}), 400, "invalid_request", "image.url"),
]


@pytest.mark.badinput
@pytest.mark.parametrize("kwargs,status,code,field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_gets_its_4xx_and_creates_nothing(call, jobs_collection, inputs_prefix, kwargs, status, code, field):
    jobs_before, inputs_before = job_count(jobs_collection), input_objects(inputs_prefix)
    resp = call("api").post("/jobs", **kwargs)
    error = resp.get_json()["error"]
    assert (resp.status_code, error["code"]) == (status, code), error
    assert error["message"]
    assert error["field"] == field, error
    assert job_count(jobs_collection) == jobs_before
    assert input_objects(inputs_prefix) == inputs_before


@pytest.fixture(scope="module")
def anonymous(function_env):
    """The api entry point called without the dev API key."""
    return create_app(target="api", source=SOURCE).test_client()


@pytest.fixture(scope="module")
def someone_elses_job(stack, function_env):
    """A job of client `other`, made over HTTP with its own key."""
    resp = requests.post(f"{stack.function_urls['api'].rstrip('/')}/jobs", json={"prompt": "someone else's film"},
                         headers={"Authorization": f"Bearer {stack.api_keys['other']}"}, timeout=30)
    assert resp.status_code == 202
    return resp.json()["id"]


AUTH_CASES = [
    ("no-authorization", {}),
    ("empty-bearer", {"Authorization": "Bearer "}),
    ("wrong-key", {"Authorization": "Bearer vr_not_a_key_we_issued"}),
    ("basic-scheme", {"Authorization": "Basic " + b64(b"demo:password")}),
    ("key-without-scheme", {"Authorization": DEV_API_KEYS["demo"]}),
    ("hash-instead-of-key", {"Authorization": "Bearer " + hashlib.sha256(DEV_API_KEYS["demo"].encode()).hexdigest()}),
    ("huge-key", {"Authorization": "Bearer " + "k" * 8000}),
]


@pytest.mark.badinput
@pytest.mark.parametrize("headers", [c[1] for c in AUTH_CASES], ids=[c[0] for c in AUTH_CASES])
@pytest.mark.parametrize("method,path", [("post", "/jobs"), ("get", "/jobs/0123456789abcdef0123456789abcdef"), ("get", "/providers")],
                         ids=["post-jobs", "get-job", "providers"])
def test_requests_without_a_valid_api_key_get_401_and_create_nothing(anonymous, jobs_collection, headers, method, path):
    before = job_count(jobs_collection)
    resp = getattr(anonymous, method)(path, json={"prompt": "a calm lake"}, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthenticated"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert DEV_API_KEYS["demo"] not in resp.get_data(as_text=True)  # a key is never echoed back
    assert job_count(jobs_collection) == before


@pytest.mark.badinput
@pytest.mark.parametrize("method,suffix", [("get", ""), ("post", ":cancel"), ("post", "/webhooks:redeliver")])
def test_another_clients_job_is_not_found(call, someone_elses_job, method, suffix):
    resp = getattr(call("api"), method)(f"/jobs/{someone_elses_job}{suffix}")
    assert resp.status_code == 404
    assert resp.get_json()["error"] == {"code": "not_found", "message": "no such job", "field": "id"}


def test_the_job_is_still_there_for_its_owner(stack, someone_elses_job):
    """Its owner sees it, and it ran to the end: the other client's refused calls did not touch it."""
    url = f"{stack.function_urls['api'].rstrip('/')}/jobs/{someone_elses_job}"
    owner = {"Authorization": f"Bearer {stack.api_keys['other']}"}
    deadline = time.monotonic() + 60
    while (resp := requests.get(url, headers=owner, timeout=10)).json()["status"] not in ("succeeded", "failed", "cancelled"):
        assert resp.status_code == 200 and time.monotonic() < deadline, resp.text
        time.sleep(0.25)
    assert (resp.status_code, resp.json()["id"], resp.json()["status"]) == (200, someone_elses_job, "succeeded")


@pytest.mark.badinput
@pytest.mark.parametrize("path,field", [
    ("/jobs/..%2F..%2Fetc%2Fpasswd", None),  # decoded to a path no route matches
    ("/jobs/" + "0" * 31 + "G", "id"),
    ("/jobs/%00", "id"),
    ("/jobs/0123456789ABCDEF0123456789ABCDEF", "id"),
])
def test_job_ids_that_are_not_ours_are_not_found(call, path, field):
    resp = call("api").get(path)
    assert (resp.status_code, resp.get_json()["error"]["code"], resp.get_json()["error"]["field"]) == (404, "not_found", field)


@pytest.mark.badinput
@pytest.mark.parametrize("key", ["two words", "x" * 256, "caf\u00e9", ""])
def test_malformed_idempotency_keys_are_refused(call, jobs_collection, key):
    before = job_count(jobs_collection)
    resp = call("api").post("/jobs", json={"prompt": "a calm lake"}, headers={"Idempotency-Key": key})
    assert (resp.status_code, resp.get_json()["error"]["code"], resp.get_json()["error"]["field"]) == (400, "invalid_request", "Idempotency-Key")
    assert job_count(jobs_collection) == before


@pytest.mark.badinput
def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(stack, jobs_collection):
    """No Content-Length to check: the API reads one byte past the limit and stops."""
    before = job_count(jobs_collection)
    chunks = (b'{"prompt": "' if i == 0 else b"x" * 65536 for i in range(40))  # 2.5 MiB, chunked
    resp = requests.post(f"{stack.function_urls['api'].rstrip('/')}/jobs", data=chunks, timeout=30,
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {stack.api_key}"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert job_count(jobs_collection) == before


def test_idempotency_keys_never_reach_object_names(call):
    """A key full of path tricks is hashed into the job id: outputs stay under videos/<32 hex>/."""
    resp = call("api").post("/jobs", json={"prompt": "a calm lake"}, headers={"Idempotency-Key": f"../../tmp/{uuid.uuid4().hex}"})
    assert resp.status_code == 202
    job_id = resp.get_json()["id"]
    assert len(job_id) == 32 and set(job_id) <= set("0123456789abcdef")
    call("api").post(f"/jobs/{job_id}:cancel")


def multipart(*parts: tuple[str, bytes, str | None], boundary: str = "veo-relay-test-boundary"):
    """A multipart/form-data body, byte for byte: (name, data, filename or None for a text part)."""
    out = b""
    for name, data, filename in parts:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        out += (f'; filename="{filename}"\r\nContent-Type: application/json' if filename else "").encode() + b"\r\n\r\n" + data + b"\r\n"
    return raw(out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}")


# The `request` part of a multipart job goes through the same strict parser as a JSON body.
MULTIPART_CASES = [
    ("duplicate-key", multipart(("request", b'{"prompt": "a lake", "prompt": "a lake [sim:op_error]"}', None)), "prompt"),
    ("duplicate-key-nested", multipart(("request", b'{"prompt": "p", "metadata": {"a": 1, "a": 2}}', None)), "metadata.a"),
    ("nan", multipart(("request", b'{"prompt": "p", "seed": NaN}', None)), "request"),
    ("infinity-in-a-file-part", multipart(("request", b'{"prompt": "p", "metadata": {"x": Infinity}}', "request.json")), "request"),
    ("not-utf8-text-part", multipart(("request", b'{"prompt": "caf\xe9"}', None)), "request"),
    ("not-utf8-file-part", multipart(("request", b'{"prompt": "caf\xe9"}', "request.json")), "request"),
    ("nested-100k-deep", multipart(("request", b'{"prompt": "p", "metadata": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", None)), "request"),
    ("not-an-object", multipart(("request", b'[{"prompt": "p"}]', None)), "request"),
    ("request-part-twice", multipart(("request", b'{"prompt": "p"}', None), ("request", b'{"prompt": "q"}', None)), "request"),
    ("request-text-and-file-part", multipart(("request", b'{"prompt": "p"}', None), ("request", b'{"prompt": "p"}', "r.json")), "request"),
    ("metadata-not-storable", multipart(("request", b'{"prompt": "p", "metadata": {"grid": [[1]]}}', None)), "metadata.grid.0"),
    ("prompt-control-character", multipart(("request", b'{"prompt": "a lake\\u001b[0m"}', None)), "prompt"),
]


@pytest.mark.badinput
@pytest.mark.parametrize("kwargs,field", [c[1:] for c in MULTIPART_CASES], ids=[c[0] for c in MULTIPART_CASES])
def test_a_multipart_request_part_is_parsed_as_strictly_as_a_body(call, jobs_collection, inputs_prefix, kwargs, field):
    jobs_before, inputs_before = job_count(jobs_collection), input_objects(inputs_prefix)
    resp = call("api").post("/jobs", **kwargs)
    error = resp.get_json()["error"]
    assert (resp.status_code, error["code"], error["field"]) == (400, "invalid_request", field), error
    assert error["message"]
    assert job_count(jobs_collection) == jobs_before
    assert input_objects(inputs_prefix) == inputs_before


@pytest.mark.parametrize("metadata", [
    nested(20),
    {"a": [{"b": [1, {"c": [True, None, 1.5]}]}]},
    {"max": 2**63 - 1, "min": -(2**63), "tiny": 5e-324, "minus-zero": -0.0},
    {"k" * 745: {"j" * 745: "a field path of 1,500 bytes"}},
    {"a.b": 1, "`": 2, "___": 3, " ": 4, "\x00": 5, "émoji 🎬": "\u200d\u2028\ufffd"},
], ids=["20-levels", "arrays-of-maps-of-arrays", "number-bounds", "field-path-1500-bytes", "odd-keys"])
def test_metadata_at_firestores_limits_is_stored_and_read_back_equal(call, jobs_collection, metadata):
    """Through the API into the real Firestore emulator, and back: what the schema lets pass,
    Firestore keeps, exactly."""
    resp = call("api").post("/jobs", json={"prompt": "a calm lake at dawn", "metadata": metadata})
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["id"]
    try:
        assert same(jobs_collection.document(job_id).get().to_dict()["metadata"], metadata)
        assert same(call("api").get(f"/jobs/{job_id}").get_json()["metadata"], metadata)
    finally:
        call("api").post(f"/jobs/{job_id}:cancel")


@pytest.fixture(scope="module")
def probe_collection(function_env):
    """Not `jobs`: documents written here are no job and no other test counts them."""
    from google.cloud import firestore

    return firestore.Client(project=function_env["GOOGLE_CLOUD_PROJECT"]).collection("storable-probe")


_KEYS = st.one_of(st.text(st.characters(codec="utf-8"), max_size=8),
                  st.sampled_from(["", "__x__", "____", "___", "a.b", "`", "\x00", "k" * 745, "é" * 372, "k" * 1495]))
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.sampled_from([2**63 - 1, -(2**63), 2**63]),
                    st.floats(allow_nan=False), st.text(st.characters(codec="utf-8"), max_size=10))


def _containers_of(inner: st.SearchStrategy) -> st.SearchStrategy:
    """Lists and maps of `inner` (a named function: hypothesis reads a lambda's source to check
    it recurses, and misreads one that shares its line with another call)."""
    return st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3)


def _deep(levels: int, leaf, pattern: list[bool]):
    for i in range(levels):
        leaf = [leaf] if pattern[i % len(pattern)] else {"k": leaf}
    return leaf


_VALUES = st.one_of(
    st.recursive(_LEAVES, _containers_of, max_leaves=10),
    st.builds(_deep, st.integers(17, 22), st.one_of(_LEAVES, st.just({}), st.just([])), st.lists(st.booleans(), min_size=1, max_size=3)),
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(metadata=st.dictionaries(_KEYS, _VALUES, max_size=3))
def test_what_the_value_model_accepts_the_real_firestore_stores(probe_collection, metadata):
    """core/storable.py against the emulator itself: metadata the schema lets pass is written
    and read back equal, never refused by Firestore (the check may refuse a little more: `____`,
    an empty array as a 21st level, infinities)."""
    from veorelay.core.storable import NotStorable, check_field_value, check_unicode

    try:
        check_unicode(metadata)
        check_field_value("metadata", metadata)
    except NotStorable:
        return
    doc = probe_collection.document("probe")
    doc.set({"metadata": metadata})
    assert same(doc.get().to_dict()["metadata"], metadata)
