"""Input images at acceptance (steps/images.py, through create_job): decoded before anything is
stored; a request refused at any step leaves no object; names that carry the content, so a
later request with the same Idempotency-Key never picks up an earlier one's bytes; gs:// images
only from the client's own uploads/<client id>/ folder or a bucket the deployment lists."""
from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.odd_urls import ANY_CHAR, offline_getaddrinfo, urls
from veorelay.core.errors import ApiError, TransientError
from veorelay.steps.accept import create_job, job_id_for

from .fake_providers import FAKE_CAPABILITIES, FakeProvider
from .fakes import make_runtime
from .helpers import WEBHOOK_URL, body
from .image_files import HOSTILE, jpeg, png, webp

RED, BLUE, GREEN = png(colour=(255, 0, 0)), png(colour=(0, 0, 255)), png(colour=(0, 255, 0))
SITE = "https://93.184.215.14"  # a literal public address: nothing to resolve
# Pillow warns about a big header before decode() refuses it; production ignores it (core/images.py).
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
CAPS = replace(FAKE_CAPABILITIES, options=FAKE_CAPABILITIES.options | {"reference_images"}, max_reference_images=3)


def b64(data: bytes, mime: str = "image/png") -> dict[str, str]:
    return {"base64": base64.b64encode(data).decode(), "mime_type": mime}


def name_for(job_id: str, slot: str, data: bytes, ext: str = "png") -> str:
    return f"inputs/{job_id}/{slot}-{hashlib.sha256(data).hexdigest()[:32]}.{ext}"


class Response:
    def __init__(self, status: int, headers: dict[str, str], content: bytes):
        self.status_code, self.headers, self._content = status, headers, content
        self.is_redirect = status in (301, 302, 303, 307, 308) and "Location" in headers

    def iter_content(self, size: int) -> Iterator[bytes]:
        for i in range(0, len(self._content), size):
            yield self._content[i:i + size]

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: Any) -> None:
        pass


class ImageSite:
    """rt.user_http for image URLs: GET answers by URL (status, headers, body); 404 otherwise."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]] | None = None):
        self.routes = dict(routes or {})
        self.gets: list[str] = []

    def serve(self, path: str, content: bytes, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.routes[SITE + path] = (status, headers or {}, content)
        return SITE + path

    def get(self, url: str, **_: Any) -> Response:
        self.gets.append(url)
        return Response(*self.routes.get(url, (404, {}, b"")))


@pytest.fixture
def site() -> ImageSite:
    return ImageSite()


@pytest.fixture
def rt(site):
    runtime = make_runtime({"VEO_INPUT_BUCKETS": "a-clients-bucket"}, providers=[FakeProvider(capabilities=CAPS)])
    runtime.user_http = site  # type: ignore[assignment]
    return runtime


@pytest.fixture
def bucket(rt):
    return rt.bucket


@pytest.fixture
def store(rt):
    return rt.store


@pytest.fixture
def tasks(rt):
    return rt.scheduler


def nothing_left(rt) -> None:
    """No job, no task, not one object anywhere in veo-relay's bucket."""
    assert rt.store.ids() == [] and rt.scheduler.created == [] and rt.bucket.names() == []


def refused(rt, fields: dict[str, Any], client_id: str = "acme", key: str | None = None, uploads=None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        create_job(rt, body(**fields), client_id=client_id, idempotency_key=key, uploads=uploads)
    return caught.value


# ---------------------------------------------------------------------------- decoded, then stored


@pytest.mark.parametrize("data,mime,ext,size", [
    (png((16, 12)), "image/png", "png", (16, 12)),
    (jpeg((40, 20)), "image/jpeg", "jpg", (40, 20)),
    (webp((8, 30)), "image/webp", "webp", (8, 30)),
])
def test_an_image_is_stored_under_its_content_hash_with_its_dimensions(rt, bucket, store, data, mime, ext, size):
    job, created = create_job(rt, body(image=b64(data, mime)), client_id="acme")

    name = name_for(job["id"], "image", data, ext)
    assert created and bucket.names() == [name] and bucket.data(name) == data
    stored = bucket.objects[name]
    assert stored.content_type == mime
    assert stored.metadata == {"sha256": hashlib.sha256(data).hexdigest(), "width": str(size[0]), "height": str(size[1])}
    assert store.job(job["id"])["request"]["image"] == {"gcs_uri": f"gs://{bucket.name}/{name}", "mime_type": mime}


def test_every_source_and_slot_is_decoded_and_stored(rt, bucket, store, site):
    bucket.put("uploads/acme/frames/last.png", BLUE)
    url = site.serve("/ref.png", GREEN, headers={"Content-Type": "application/octet-stream"})
    job, _ = create_job(rt, body(image={"upload": "first"}, last_frame={"gcs_uri": f"gs://{bucket.name}/uploads/acme/frames/last.png"},
                                 reference_images=[{"image": {"url": url}, "type": "style"}]),
                        client_id="acme", uploads={"first": RED})
    request = store.job(job["id"])["request"]
    expected = {"image": name_for(job["id"], "image", RED), "last_frame": name_for(job["id"], "last_frame", BLUE),
                "ref": name_for(job["id"], "reference_0", GREEN)}
    assert request["image"]["gcs_uri"].endswith(expected["image"]) and request["last_frame"]["gcs_uri"].endswith(expected["last_frame"])
    assert request["reference_images"][0]["image"]["gcs_uri"].endswith(expected["ref"])
    assert sorted(bucket.names("inputs/")) == sorted(expected.values())


# ---------------------------------------------------------------------------- hostile images


SLOTS = [  # (request fields with the bad image in it, the field the refusal names)
    (lambda bad: {"image": bad}, "image"),
    (lambda bad: {"image": b64(RED), "last_frame": bad}, "last_frame"),
    (lambda bad: {"image": b64(RED), "last_frame": b64(BLUE), "reference_images": [{"image": b64(GREEN)}, {"image": bad}]},
     "reference_images.1.image"),
]


@pytest.mark.badinput
@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("slot", range(len(SLOTS)), ids=["image", "last_frame", "reference"])
def test_a_hostile_image_in_any_slot_is_refused_naming_its_field_and_nothing_is_written(rt, name, slot):
    data, words = HOSTILE[name]
    fields, field = SLOTS[slot]
    error = refused(rt, fields(b64(data)))
    assert (error.status, error.code, error.field) == (400, "invalid_request", field), error.message
    assert words in error.message
    nothing_left(rt)


@pytest.mark.badinput
@pytest.mark.parametrize("source", ["upload", "url", "gcs_uri-uploads", "gcs_uri-allowed-bucket"])
def test_a_hostile_image_from_any_source_is_refused_and_nothing_is_written(rt, site, source):
    bad, _ = HOSTILE["png-then-zip"]
    uploads = None
    if source == "upload":
        image, uploads = {"upload": "part"}, {"part": bad}
    elif source == "url":
        image = {"url": site.serve("/bad.png", bad)}
    elif source == "gcs_uri-uploads":
        rt.bucket.put("uploads/acme/bad.png", bad)
        image = {"gcs_uri": f"gs://{rt.bucket.name}/uploads/acme/bad.png"}
    else:
        rt.bucket.client.bucket("a-clients-bucket").put("bad.png", bad)
        image = {"gcs_uri": "gs://a-clients-bucket/bad.png"}
    before = rt.bucket.names()
    error = refused(rt, {"image": b64(RED), "last_frame": image}, uploads=uploads)
    assert (error.status, error.code, error.field) == (400, "invalid_request", "last_frame")
    assert rt.bucket.names() == before and rt.store.ids() == [] and rt.scheduler.created == []


@pytest.mark.badinput
@pytest.mark.parametrize("declared,data", [("image/jpeg", RED), ("image/png", jpeg()), ("image/webp", RED), ("image/png", webp())])
def test_a_declared_type_that_differs_from_what_decodes_is_refused(rt, declared, data):
    error = refused(rt, {"image": b64(data, declared)})
    assert (error.status, error.field) == (400, "image.mime_type") and declared in error.message
    nothing_left(rt)


@pytest.mark.badinput
def test_an_image_over_8_mib_is_refused_before_it_is_decoded(rt):
    error = refused(rt, {"image": {"upload": "big"}}, uploads={"big": RED + b"\0" * (8 * 1024 * 1024)})
    assert (error.status, error.code, error.field) == (413, "payload_too_large", "image")
    nothing_left(rt)


# ---------------------------------------------------------------------------- refused at any step: nothing written


@pytest.mark.badinput
@pytest.mark.parametrize("fields,uploads,status,field", [
    ({"colour": "red"}, None, 400, "colour"),  # the schema
    ({"resolution": "1080p"}, None, 400, "resolution"),  # the provider's capabilities
    ({"webhook_url": "https://10.0.0.1/hook"}, None, 400, "webhook_url"),  # the webhook URL
    ({"last_frame": b64(BLUE)}, None, 400, "reference_images.0.image"),  # a later image (below: a GIF)
    ({"last_frame": {"upload": "nowhere"}}, None, 400, "last_frame.upload"),
    ({}, {"spare": BLUE}, 400, "spare"),  # an uploaded part nothing uses, after every image decoded fine
], ids=["schema", "capabilities", "webhook", "later-image", "missing-upload", "unused-upload"])
def test_a_request_with_good_images_refused_at_any_step_leaves_no_object(rt, fields, uploads, status, field):
    gif = b64(HOSTILE["gif"][0])
    request = {"image": b64(RED), **fields}
    if field == "reference_images.0.image":
        request["reference_images"] = [{"image": gif}]
    error = refused(rt, request, uploads=uploads)
    assert (error.status, error.field) == (status, field), error.message
    nothing_left(rt)


@pytest.mark.badinput
def test_a_reused_idempotency_key_is_refused_before_any_image_is_fetched_or_written(rt, bucket, store, site):
    first, _ = create_job(rt, body(image=b64(RED)), client_id="acme", idempotency_key="order-1")
    objects = bucket.names()
    url = site.serve("/other.png", BLUE)

    error = refused(rt, {"image": {"url": url}, "last_frame": b64(GREEN)}, key="order-1")
    assert (error.status, error.code, error.field) == (409, "conflict", "Idempotency-Key")
    assert bucket.names() == objects and store.ids() == [first["id"]] and site.gets == []  # not even fetched


def test_a_replay_writes_nothing_and_answers_the_first_job(rt, bucket, store, site):
    url = site.serve("/frame.png", RED)
    first, _ = create_job(rt, body(image={"url": url}), client_id="acme", idempotency_key="order-2")
    site.serve("/frame.png", BLUE)  # the URL now serves other bytes: the replay is still the first job
    uploads_before = len(bucket.objects)

    again, created = create_job(rt, body(image={"url": url}), client_id="acme", idempotency_key="order-2")
    assert not created and again["id"] == first["id"] and again["request"] == first["request"]
    assert len(bucket.objects) == uploads_before and site.gets == [url]


@pytest.mark.badinput
def test_a_later_request_with_the_same_key_never_picks_up_a_refused_ones_bytes(rt, bucket, store):
    """The first request dies after storing its images (the job is never recorded: Firestore
    down). The next one with the same key sends other bytes for the same slot: its job points
    at its own bytes, never at the first request's object."""
    store.faults.add("create", TransientError("internal", "Firestore unavailable"))
    with pytest.raises(TransientError):
        create_job(rt, body(image=b64(RED)), client_id="acme", idempotency_key="order-3")
    job_id = job_id_for("acme", "order-3")
    assert store.ids() == [] and bucket.names() == [name_for(job_id, "image", RED)]  # left for the lifecycle rule

    job, created = create_job(rt, body(image=b64(BLUE)), client_id="acme", idempotency_key="order-3")
    uri = store.job(job["id"])["request"]["image"]["gcs_uri"]
    assert created and job["id"] == job_id and bucket.data(uri.split("/", 3)[3]) == BLUE
    assert sorted(bucket.names()) == sorted([name_for(job_id, "image", RED), name_for(job_id, "image", BLUE)])


def test_a_retry_with_the_same_bytes_finds_its_own_object_and_records_the_job(rt, bucket, store):
    store.faults.add("create", TransientError("internal", "Firestore unavailable"))
    with pytest.raises(TransientError):
        create_job(rt, body(image=b64(RED)), client_id="acme", idempotency_key="order-4")
    job, created = create_job(rt, body(image=b64(RED)), client_id="acme", idempotency_key="order-4")
    assert created and bucket.names() == [name_for(job["id"], "image", RED)] and store.ids() == [job["id"]]


@pytest.mark.badinput
def test_losing_the_race_to_a_concurrent_request_with_the_same_key_is_a_409_whose_objects_no_job_uses(rt, bucket, store):
    """The documented residual: between our read of the key and our create, another request
    with the key recorded its job. Ours is refused; the objects it wrote stay unreferenced
    (the lifecycle rule removes inputs/), and the winner's job points only at its own bytes."""
    winner, _ = create_job(rt, body(image=b64(RED)), client_id="acme", idempotency_key="order-5")
    real_get, reads = store.get, []

    def get_as_before_the_winner(job_id: str):
        reads.append(job_id)
        return None if len(reads) == 1 else real_get(job_id)  # our first read came before the winner's create

    store.get = get_as_before_the_winner

    error = refused(rt, {"image": b64(BLUE)}, key="order-5")
    assert (error.status, error.code) == (409, "conflict") and len(reads) == 2
    store.get = real_get
    assert store.job(winner["id"])["request"]["image"]["gcs_uri"].endswith(name_for(winner["id"], "image", RED))
    assert sorted(bucket.names()) == sorted([name_for(winner["id"], "image", RED), name_for(winner["id"], "image", BLUE)])


def test_an_input_that_cannot_be_stored_is_a_503_and_no_job(rt, bucket, store):
    bucket.faults.add("upload", gexc.ServiceUnavailable("GCS down"))
    with pytest.raises(TransientError):
        create_job(rt, body(image=b64(RED)), client_id="acme", idempotency_key="order-6")
    assert store.ids() == [] and bucket.names() == []


# ---------------------------------------------------------------------------- gs:// images: which buckets


@pytest.mark.badinput
@pytest.mark.parametrize("uri,words", [
    ("gs://{own}/inputs/0123456789abcdef0123456789abcdef/image-aa.png", "only under gs://{own}/uploads/acme/"),
    ("gs://{own}/videos/0123456789abcdef0123456789abcdef/0.mp4", "only under"),
    ("gs://{own}/uploads/globex/frame.png", "only under"),  # another client's folder
    ("gs://{own}/uploads/acme-evil/frame.png", "only under"),
    ("gs://{own}/uploads/acme/../globex/frame.png", "'..'"),
    ("gs://{own}/requests/order.json", "only under"),
    ("gs://not-listed-bucket/frame.png", "does not read images from"),
])
def test_a_gcs_image_outside_what_the_deployment_allows_is_refused_unread(rt, bucket, uri, words):
    uri, words = uri.format(own=bucket.name), words.format(own=bucket.name)
    bucket.put("uploads/globex/frame.png", RED)  # exists, and is another client's
    before = bucket.names()
    error = refused(rt, {"image": {"gcs_uri": uri}})
    assert (error.status, error.code, error.field) == (400, "invalid_request", "image.gcs_uri") and words in error.message
    assert bucket.names() == before and rt.store.ids() == []


def test_a_gcs_image_in_the_clients_own_uploads_folder_or_a_listed_bucket_is_read(rt, bucket, store):
    bucket.put("uploads/acme/frames/first.png", RED)
    rt.bucket.client.bucket("a-clients-bucket").put("frames/last.png", BLUE)
    job, _ = create_job(rt, body(image={"gcs_uri": f"gs://{bucket.name}/uploads/acme/frames/first.png"},
                                 last_frame={"gcs_uri": "gs://a-clients-bucket/frames/last.png"}), client_id="acme")
    assert bucket.data(name_for(job["id"], "image", RED)) == RED and bucket.data(name_for(job["id"], "last_frame", BLUE)) == BLUE


def test_without_input_buckets_only_the_uploads_folder_is_readable():
    rt = make_runtime(providers=[FakeProvider(capabilities=CAPS)])
    rt.bucket.client.bucket("a-clients-bucket").put("frames/first.png", RED)
    error = refused(rt, {"image": {"gcs_uri": "gs://a-clients-bucket/frames/first.png"}})
    assert error.field == "image.gcs_uri" and "VEO_INPUT_BUCKETS" in error.message


# ---------------------------------------------------------------------------- image URLs


@pytest.mark.badinput
@pytest.mark.parametrize("location", ["https://[oops", "https://[abc]/x.png", "https://example.com:0/", "https://10.0.0.1/x.png",
                                      "file:///etc/passwd", "https://169.254.169.254/latest/meta-data/"])
def test_a_redirect_to_a_url_we_would_refuse_is_a_400_naming_the_field(rt, site, location):
    url = site.serve("/moved", b"", status=302, headers={"Location": location})
    error = refused(rt, {"image": {"url": url}})
    assert (error.status, error.code, error.field) == (400, "invalid_request", "image.url"), error.message
    nothing_left(rt)


@pytest.mark.badinput
def test_an_image_url_declaring_more_than_8_mib_is_refused_before_reading(rt, site):
    url = site.serve("/huge.png", RED, headers={"Content-Length": str(9 * 1024 * 1024)})
    error = refused(rt, {"image": {"url": url}})
    assert (error.status, error.field) == (413, "image.url")
    nothing_left(rt)


def test_a_webhook_and_images_are_checked_before_anything_is_stored(rt, site):
    url = site.serve("/frame.png", RED)
    job, created = create_job(rt, body(image={"url": url}, webhook_url=WEBHOOK_URL), client_id="acme")
    assert created and rt.bucket.names() == [name_for(job["id"], "image", RED)]


# ---------------------------------------------------------------------------- URLs as a class, through create_job


class AnySite(ImageSite):
    """Serves RED at every URL: whether a URL is fetched depends only on the checks."""

    def get(self, url: str, **_: Any) -> Response:
        self.gets.append(url)
        return Response(200, {}, RED)


def _property(check):
    """Hypothesis over the odd URL strings of tests/unit/odd_urls.py."""
    return settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])(
        given(url=st.one_of(urls(), st.text(ANY_CHAR, max_size=40)))(check))


@pytest.fixture
def offline_dns(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", offline_getaddrinfo)


@pytest.mark.badinput
@_property
def test_any_webhook_url_is_a_400_naming_webhook_url_or_a_job(offline_dns, url):
    rt = make_runtime(providers=[FakeProvider(capabilities=CAPS)])
    try:
        job, created = create_job(rt, body(webhook_url=url))
    except ApiError as exc:
        assert (exc.status, exc.code, exc.field) == (400, "invalid_request", "webhook_url"), exc.body()
        assert rt.store.ids() == [] and rt.scheduler.created == []
    else:
        assert created and rt.store.job(job["id"])["webhook"]["url"] == url


@pytest.mark.badinput
@_property
def test_any_image_url_is_a_400_naming_the_image_or_a_job_with_its_bytes(offline_dns, url):
    rt = make_runtime(providers=[FakeProvider(capabilities=CAPS)])
    rt.user_http = AnySite()  # type: ignore[assignment]
    try:
        job, _ = create_job(rt, body(image={"url": url}))
    except ApiError as exc:
        assert exc.status == 400 and exc.code == "invalid_request" and exc.field in ("image", "image.url"), exc.body()
        nothing_left(rt)
    else:
        assert rt.bucket.names() == [name_for(job["id"], "image", RED)]
