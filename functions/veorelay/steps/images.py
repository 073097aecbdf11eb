"""Accepting a job's input images: fetched, decoded and judged in memory, then kept in the bucket.

Each image of a request (inline base64, a multipart upload, an https URL or a gs:// object) is
fetched once and decoded (core/images.py: PNG, JPEG or WebP by its bytes and its structure,
the declared mime_type, if any, agreeing; dimensions within limits; nothing after its end; a
full decode). `prepare_images` does that for every image and writes nothing; only once the
request has passed every check and is not an idempotent replay (steps/accept.py) does
`store_images` write them, create-only, under names that carry their content hash:
gs://BUCKET/inputs/<job id>/<slot>-<sha256 prefix>.<ext>. The job stores only that gs:// URI
and the decoded type, never image bytes: Firestore documents stay small and the submit step
reads the same bytes the API checked.

Why content-addressed names: the job id comes from the client and its Idempotency-Key, so
requests with the same key share inputs/<job id>/. With one name per content, a request can
only ever find ("exists", create-only) an object holding its own bytes, never one that an
earlier, refused or crashed request left behind.
"""
from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.cloud import storage

from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.images import BadImage, ImageInfo, decode, gcs_source_problem, input_object_name, split_gcs_uri
from veorelay.core.request import MAX_IMAGE_BYTES, GenerationRequest, ImageInput
from veorelay.gcp import logs
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_RETRY
from veorelay.net.guarded import BlockedDestination
from veorelay.net.url_rules import check_user_url
from veorelay.runtime import Runtime

MAX_REDIRECTS = 3
FETCH_TIMEOUT = (5.0, 20.0)  # connect, and each read
FETCH_DEADLINE_S = 30.0  # a whole image download, however slowly the server trickles it


@dataclass(frozen=True)
class PreparedImage:
    field: str  # where the request names it ("reference_images.0.image")
    name: str  # its object in veo-relay's bucket, inputs/<job id>/<slot>-<sha256 prefix>.<ext>
    data: bytes
    info: ImageInfo


@dataclass(frozen=True)
class PreparedInputs:
    request: GenerationRequest  # every image pointing at its gs:// object (not written yet)
    images: tuple[PreparedImage, ...]


def prepare_images(rt: Runtime, req: GenerationRequest, job_id: str, client_id: str,
                   uploads: Mapping[str, bytes] | None = None) -> PreparedInputs:
    """Fetch, decode and check every image of `req`, in memory: ApiError (naming the field) for
    the first one refused. Nothing is written; `store_images` does that once the job is sure."""
    uploads = dict(uploads or {})
    used: set[str] = set()
    prepared: list[PreparedImage] = []

    def prepare(field: str, slot: str, image: ImageInput) -> ImageInput:
        data = _fetch(rt, field, image, client_id, uploads, used)
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
        try:
            info = decode(data)
        except BadImage as exc:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} {exc}", field) from None
        if image.mime_type is not None and image.mime_type != info.mime:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field}.mime_type is {image.mime_type}, but the bytes are a {info.mime} image",
                           f"{field}.mime_type")
        name = input_object_name(job_id, slot, info)
        prepared.append(PreparedImage(field, name, data, info))
        return ImageInput(gcs_uri=f"gs://{rt.bucket.name}/{name}", mime_type=info.mime)

    return PreparedInputs(_replace_images(req, prepare, uploads, used), tuple(prepared))


def store_images(bucket: storage.Bucket, inputs: PreparedInputs) -> None:
    """Write the prepared images, create-only. An object already there under its name holds
    the same bytes (the name is their hash): a retried request, or a concurrent one."""
    for image in inputs.images:
        _write_once(bucket, image)


def _replace_images(req: GenerationRequest, prepare: Callable[[str, str, ImageInput], ImageInput], uploads: dict[str, bytes],
                    used: set[str]) -> GenerationRequest:
    updates: dict[str, Any] = {}
    if req.image is not None:
        updates["image"] = prepare("image", "image", req.image)
    if req.last_frame is not None:
        updates["last_frame"] = prepare("last_frame", "last_frame", req.last_frame)
    if req.reference_images:
        updates["reference_images"] = [
            ref.model_copy(update={"image": prepare(f"reference_images.{i}.image", f"reference_{i}", ref.image)})
            for i, ref in enumerate(req.reference_images)
        ]
    unused = sorted(set(uploads) - used)
    if unused:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"uploaded part {unused[0]!r} is not used by the request", unused[0])
    return req.model_copy(update=updates) if updates else req


def _fetch(rt: Runtime, field: str, image: ImageInput, client_id: str, uploads: dict[str, bytes], used: set[str]) -> bytes:
    if image.base64 is not None:
        try:
            return base64.b64decode(image.base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field}.base64 is not valid base64", f"{field}.base64") from None
    if image.upload is not None:
        if image.upload not in uploads:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field}.upload names no uploaded part ({image.upload!r})", f"{field}.upload")
        used.add(image.upload)
        return uploads[image.upload]
    if image.url is not None:
        return _download(f"{field}.url", image.url, rt.user_http, rt.settings.allow_loopback_urls)
    return _read_user_object(rt, f"{field}.gcs_uri", image.gcs_uri or "", client_id)


def _download(field: str, url: str, session: requests.Session, allow_loopback: bool) -> bytes:
    """GET a user's image URL through the SSRF-guarded session, every redirect hop checked again,
    the whole download within FETCH_DEADLINE_S."""
    deadline = time.monotonic() + FETCH_DEADLINE_S
    for _ in range(MAX_REDIRECTS + 1):
        check_user_url(url, field, allow_loopback)
        try:
            resp = session.get(url, stream=True, timeout=FETCH_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} could not be fetched ({type(exc).__name__})", field) from None
        except BlockedDestination as exc:  # the address changed since the check (DNS rebinding)
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field}: {exc}", field) from None
        with resp:
            if resp.is_redirect and resp.headers.get("Location"):
                try:
                    url = requests.compat.urljoin(url, resp.headers["Location"])
                except ValueError:  # a Location urlsplit cannot read ("https://[oops")
                    raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} redirected to an invalid URL", field) from None
                continue
            if resp.status_code != 200:
                raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} answered HTTP {resp.status_code}", field)
            return _read_response(field, resp, deadline)
    raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} redirected more than {MAX_REDIRECTS} times", field)


def _read_response(field: str, resp: requests.Response, deadline: float) -> bytes:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
    data = bytearray()
    try:
        for chunk in resp.iter_content(64 * 1024):
            data += chunk
            if len(data) > MAX_IMAGE_BYTES:
                raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
            if time.monotonic() > deadline:
                raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} took longer than {FETCH_DEADLINE_S:.0f} s to download", field)
    except (requests.RequestException, BlockedDestination) as exc:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} could not be read ({type(exc).__name__})", field) from None
    return bytes(data)


def _read_user_object(rt: Runtime, field: str, uri: str, client_id: str) -> bytes:
    """A client's gs:// image: only in a bucket the deployment allows, and in veo-relay's own
    bucket only under uploads/<client id>/ (core/images.py gcs_source_problem)."""
    name_of_bucket, name = split_gcs_uri(uri)
    problem = gcs_source_problem(name_of_bucket, name, rt.bucket.name, client_id, rt.settings.input_buckets)
    if problem:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} {problem}", field)
    try:
        blob = rt.bucket.client.bucket(name_of_bucket).get_blob(name, timeout=GCS_CALL_S, retry=GCS_RETRY)
        if blob is None:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field}: no such object", field)
        if (blob.size or 0) > MAX_IMAGE_BYTES:
            raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
        # The generation whose size was checked, and never more than one byte past the limit.
        data: bytes = blob.download_as_bytes(start=0, end=MAX_IMAGE_BYTES, if_generation_match=blob.generation,
                                             timeout=GCS_CALL_S, retry=GCS_RETRY)
        return data
    except (gexc.Forbidden, gexc.Unauthorized, gexc.NotFound):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} cannot be read by veo-relay (grant its service account read access)",
                       field) from None
    except gexc.GoogleAPIError as exc:  # also PreconditionFailed: the object was replaced meanwhile
        raise TransientError(ErrorCode.INTERNAL, f"reading {field} failed: {type(exc).__name__}") from exc


def _write_once(bucket: storage.Bucket, image: PreparedImage) -> None:
    """Create-only, with what the decode found as object metadata. "Exists" is success: the
    name is the content's hash, so the object there holds these very bytes."""
    blob = bucket.blob(image.name)
    blob.metadata = {"sha256": image.info.sha256, "width": str(image.info.width), "height": str(image.info.height)}
    try:
        blob.upload_from_string(image.data, content_type=image.info.mime, if_generation_match=0, timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.PreconditionFailed:
        logs.info("input image already stored", object=image.name)
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"storing an input image failed: {type(exc).__name__}") from exc
