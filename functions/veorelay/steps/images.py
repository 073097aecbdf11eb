"""Accepting a job's input images: judged by their bytes and kept in the bucket.

When a job is accepted each image (inline base64, a multipart upload, an https URL or a gs://
object) is fetched once, checked (size; PNG, JPEG or WebP by its magic bytes, whatever type
was declared) and written to gs://BUCKET/inputs/<job id>/. The job stores only that gs:// URI
and the sniffed type, never image bytes: Firestore documents stay small and the submit step
reads the same bytes the API checked.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.cloud import storage

from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.images import IMAGE_EXTENSIONS, INPUTS_PREFIX, sniff, split_gcs_uri
from veorelay.core.request import MAX_IMAGE_BYTES, GenerationRequest, ImageInput
from veorelay.gcp import logs
from veorelay.net.guarded import BlockedDestination
from veorelay.net.url_rules import check_user_url

MAX_REDIRECTS = 3
FETCH_TIMEOUT = (5.0, 20.0)


def ingest_images(
    req: GenerationRequest,
    job_id: str,
    bucket: storage.Bucket,
    user_http: requests.Session,
    allow_loopback: bool = False,
    uploads: Mapping[str, bytes] | None = None,
) -> GenerationRequest:
    """Store every image of `req` under inputs/<job_id>/ and return the request pointing there."""
    uploads = dict(uploads or {})
    used: set[str] = set()
    written: list[str] = []  # removed again if a later image is refused: a refused job leaves nothing

    def store(field: str, slot: str, image: ImageInput) -> ImageInput:
        data = _fetch(field, image, bucket, user_http, allow_loopback, uploads, used)
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
        mime = sniff(data)
        if mime is None:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} is not a PNG, JPEG or WebP image", field)
        name = f"{INPUTS_PREFIX}/{job_id}/{slot}.{IMAGE_EXTENSIONS[mime]}"
        if _write_once(bucket, name, data, mime):
            written.append(name)
        return ImageInput(gcs_uri=f"gs://{bucket.name}/{name}", mime_type=mime)

    try:
        return _store_all(req, store, uploads, used)
    except ApiError:
        # Best effort: the api's identity may only create under inputs/ (no delete), and the
        # bucket's lifecycle rule removes inputs/ after 7 days anyway. The 400 must still go out.
        for name in written:
            try:
                bucket.blob(name).delete()
            except gexc.GoogleAPIError:
                logs.info("input image left for the lifecycle rule", object=name)
        raise


def _store_all(req: GenerationRequest, store: Callable[[str, str, ImageInput], ImageInput], uploads: dict[str, bytes],
               used: set[str]) -> GenerationRequest:
    updates: dict[str, Any] = {}
    if req.image is not None:
        updates["image"] = store("image", "image", req.image)
    if req.last_frame is not None:
        updates["last_frame"] = store("last_frame", "last_frame", req.last_frame)
    if req.reference_images:
        updates["reference_images"] = [
            ref.model_copy(update={"image": store(f"reference_images.{i}.image", f"reference_{i}", ref.image)})
            for i, ref in enumerate(req.reference_images)
        ]
    unused = sorted(set(uploads) - used)
    if unused:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"uploaded part {unused[0]!r} is not used by the request", unused[0])
    return req.model_copy(update=updates) if updates else req


def _fetch(field: str, image: ImageInput, bucket: storage.Bucket, user_http: requests.Session,
           allow_loopback: bool, uploads: dict[str, bytes], used: set[str]) -> bytes:
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
        return _download(f"{field}.url", image.url, user_http, allow_loopback)
    return _read_user_object(f"{field}.gcs_uri", image.gcs_uri or "", bucket)


def _download(field: str, url: str, session: requests.Session, allow_loopback: bool) -> bytes:
    """GET a user's image URL through the SSRF-guarded session, every redirect hop checked again."""
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
                url = requests.compat.urljoin(url, resp.headers["Location"])
                continue
            if resp.status_code != 200:
                raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} answered HTTP {resp.status_code}", field)
            data = bytearray()
            try:
                for chunk in resp.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
            except requests.RequestException as exc:
                raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} could not be read ({type(exc).__name__})", field) from None
            return bytes(data)
    raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} redirected more than {MAX_REDIRECTS} times", field)


def _read_user_object(field: str, uri: str, own_bucket: storage.Bucket) -> bytes:
    name_of_bucket, name = split_gcs_uri(uri)
    if name_of_bucket == own_bucket.name:
        # veo-relay's own bucket holds other jobs' inputs and videos: never read it for a client.
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} must not point into veo-relay's own bucket", field)
    try:
        blob = own_bucket.client.bucket(name_of_bucket).get_blob(name)
        if blob is None:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field}: no such object", field)
        if (blob.size or 0) > MAX_IMAGE_BYTES:
            raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} is larger than {MAX_IMAGE_BYTES} bytes", field)
        data: bytes = blob.download_as_bytes()
        return data
    except (gexc.Forbidden, gexc.Unauthorized, gexc.NotFound):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} cannot be read by veo-relay (grant its service account read access)",
                       field) from None
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"reading {field} failed: {type(exc).__name__}") from exc


def _write_once(bucket: storage.Bucket, name: str, data: bytes, mime: str) -> bool:
    """Create-only: a replayed request (same Idempotency-Key) never overwrites the first job's inputs.
    True when this call created the object."""
    blob = bucket.blob(name)
    try:
        blob.upload_from_string(data, content_type=mime, if_generation_match=0)
        return True
    except gexc.PreconditionFailed:
        return False
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"storing an input image failed: {type(exc).__name__}") from exc
