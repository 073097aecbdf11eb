"""The raw JSON body of a request, checked before anything is parsed further, stored or paid
for. Every refusal is an ApiError with the documented status (docs/RELIABILITY.md, "Bad
input"): 413 too large, 400 anything that is not one plain JSON document. (Images are
judged by their bytes in steps/images.py.)
"""
from __future__ import annotations

import json
from typing import Any

import flask
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.request import MAX_IMAGE_BYTES

# One multipart request: the job's JSON and up to five images (Cloud Run refuses more than 32 MiB).
MAX_MULTIPART_BYTES = 32 * 1024 * 1024


def parse_json_body(data: bytes, max_bytes: int) -> Any:
    """The request body as JSON, or a 4xx: too large, not UTF-8 JSON, NaN/Infinity, a key
    given twice (two parsers could disagree on which one counts), nesting too deep."""
    if len(data) > max_bytes:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body must be at most {max_bytes} bytes")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"the key {exc.key!r} appears twice in one object", exc.key) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the body is not valid JSON") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_multipart(request: flask.Request) -> tuple[Any, dict[str, bytes]]:
    """A job sent as multipart/form-data: the job's JSON in a part named `request`, images as
    file parts. An image field may name a part ({"upload": "<part>"}); parts named `image`,
    `last_frame` and (repeated) `reference_images` fill those fields when the JSON leaves them out.
    Returns (body, uploads); every upload must be used (ingest_images checks)."""
    body, files = _job_part(request)
    uploads = _uploads(files)
    _point_fields_at_uploads(body, uploads)
    return body, uploads


def _job_part(request: flask.Request) -> tuple[dict[str, Any], MultiDict[str, FileStorage]]:
    """The job's JSON object (the `request` part) and the file parts, within the size limit."""
    if (request.content_length or 0) > MAX_MULTIPART_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"a multipart job must be at most {MAX_MULTIPART_BYTES} bytes")
    request.max_content_length = MAX_MULTIPART_BYTES  # also bounds a body sent without Content-Length
    try:
        raw = request.form.get("request")
        files = request.files
    except RequestEntityTooLarge:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"a multipart job must be at most {MAX_MULTIPART_BYTES} bytes") from None
    except HTTPException:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the multipart/form-data body cannot be read") from None
    if raw is None and "request" in files:
        raw = files["request"].read(1024 * 1024 + 1).decode("utf-8", "replace")
    if raw is None:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "a multipart job needs a part named `request` holding the job as JSON", "request")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the `request` part is not valid JSON", "request") from None
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the `request` part must be a JSON object", "request")
    return body, files


def _uploads(files: MultiDict[str, FileStorage]) -> dict[str, bytes]:
    """Every file part but `request`, by name; repeated `reference_images` parts numbered."""
    uploads: dict[str, bytes] = {}
    for part, storage_file in files.items(multi=True):
        if part == "request":
            continue
        data = storage_file.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"uploaded part {part!r} is larger than {MAX_IMAGE_BYTES} bytes", part)
        if part == "reference_images":
            part = f"reference_images[{sum(1 for k in uploads if k.startswith('reference_images['))}]"
        elif part in uploads:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"uploaded part {part!r} is given twice", part)
        uploads[part] = data
    return uploads


def _point_fields_at_uploads(body: dict[str, Any], uploads: dict[str, bytes]) -> None:
    """Parts named after an image field fill that field when the JSON leaves it out."""
    for field in ("image", "last_frame"):
        if field in uploads and field not in body:
            body[field] = {"upload": field}
    refs = sorted((k for k in uploads if k.startswith("reference_images[")), key=lambda k: int(k[17:-1]))
    if refs and "reference_images" not in body:
        body["reference_images"] = [{"image": {"upload": k}, "type": "asset"} for k in refs]
