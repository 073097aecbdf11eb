"""The raw JSON of a job, checked before anything is parsed further, stored or paid for, by
one strict parser whichever way the job arrives: a JSON body, the `request` part of a
multipart/form-data body, a request object in the bucket (edges/request_objects.py). Every
refusal is an ApiError with the documented status (docs/RELIABILITY.md, "Bad input"): 413 too
large, 400 anything that is not one plain JSON object. (Images are judged by their bytes in
steps/images.py; what the object holds, by core/request.py.)
"""
from __future__ import annotations

import json
from typing import IO, Any

import flask
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.request_limits import MAX_IMAGE_BYTES
from veorelay.core.storable import MAX_DEPTH, render_path
from veorelay.edges.reading import read_up_to

# One multipart request: the job's JSON and up to five images (Cloud Run refuses more than 32 MiB).
MAX_MULTIPART_BYTES = 32 * 1024 * 1024
# The job's JSON, however it arrives (a body, a multipart part, a request object).
MAX_JSON_BYTES = 1024 * 1024
# Objects and arrays, the job's own object counted: room for `metadata` at Firestore's depth
# (core/storable.py MAX_DEPTH, refused there naming the field), nothing like 100,000 levels.
MAX_JSON_DEPTH = MAX_DEPTH + 12


def parse_json_body(data: bytes, max_bytes: int, source: str = "the body", field: str | None = None) -> dict[str, Any]:
    """The one strict parser of a job's JSON, for every way a job arrives: the job as a dict, or
    a 4xx naming `source` ("the body", "the `request` part", "the request object"), with `field`
    (the part that carried it, if any) unless the problem is at a key: too large (413); not
    UTF-8, not JSON, NaN/Infinity, a key given twice in one object (two parsers could disagree
    on which one counts; the field is that key's path), nested deeper than MAX_JSON_DEPTH, or not
    an object (400)."""
    if len(data) > max_bytes:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{source} must be at most {max_bytes} bytes", field)

    def refuse(problem: str, at: str | None = field) -> ApiError:
        return ApiError(400, ErrorCode.INVALID_REQUEST, f"{source} is not one strict JSON object: {problem}", at)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 (byte {exc.start})") from None
    keys = _UniqueKeys()
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=keys)
    except RecursionError:
        raise refuse(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of over 4300 digits
        raise refuse(str(exc)) from None
    if keys.duplicate is not None:
        path = render_path((*(_path_to(value, keys.duplicate) or []), *keys.duplicate.path))
        raise refuse(f"the key {path!r} appears twice in one object", path)
    if _depth_over(value, MAX_JSON_DEPTH):
        raise refuse(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(value, dict):
        raise refuse(f"a JSON {_json_kind(value)}, not an object")
    return value


def read_json(request: flask.Request, wrong_type: str) -> dict[str, Any]:
    """A request's application/json body, by parse_json_body: 413 for one declared or found over
    MAX_JSON_BYTES, 415 (`wrong_type`) for another content type."""
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body must be at most {MAX_JSON_BYTES} bytes")
    if request.mimetype != "application/json":
        raise ApiError(415, ErrorCode.INVALID_REQUEST, wrong_type)
    # Read at most one byte past the limit: a chunked body has no Content-Length to check.
    return parse_json_body(read_up_to(request, MAX_JSON_BYTES + 1), MAX_JSON_BYTES)


class _Duplicate:
    """Stands, in the parsed value, for the object in which a key appeared twice; `path` is that
    key's, completed as the objects around it are parsed."""

    def __init__(self, key: str):
        self.path: list[str | int] = [key]


class _UniqueKeys:
    """json's object_pairs_hook: objects as dicts, and the first key given twice found with its
    path. Objects are built innermost first, so the marker (_Duplicate) climbs: an object holding
    it, directly or in arrays, becomes it, with its own key put in front of the path."""

    def __init__(self) -> None:
        self.duplicate: _Duplicate | None = None

    def __call__(self, pairs: list[tuple[str, Any]]) -> Any:
        if self.duplicate is not None:
            for key, value in pairs:
                inside = _path_to(value, self.duplicate)
                if inside is not None:
                    self.duplicate.path[:0] = [key, *inside]
                    return self.duplicate
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out and self.duplicate is None:
                self.duplicate = _Duplicate(key)
                return self.duplicate
            out[key] = value
        return out


def _path_to(value: Any, marker: _Duplicate) -> list[str | int] | None:
    """Array positions from `value` down to the marker, [] for the marker itself, None when it
    is not there. Only arrays are searched: an object holding the marker has become it."""
    if value is marker:
        return []
    if isinstance(value, list):
        for i, item in enumerate(value):
            inside = _path_to(item, marker)
            if inside is not None:
                return [i, *inside]
    return None


def _depth_over(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "boolean" if isinstance(value, bool) else "number"


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
    """The job's JSON object (the `request` part, exactly once: a text or a file part) and the
    file parts, within the size limit."""
    form, files = form_parts(request, "a multipart job", f"a multipart job must be at most {MAX_MULTIPART_BYTES} bytes, "
                             f"a text part (the `request`) at most {MAX_JSON_BYTES}")
    texts = form.getlist("request")
    given = [text.encode("latin-1") for text in texts] + [part.read(MAX_JSON_BYTES + 1) for part in files.getlist("request")]
    if not given:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "a multipart job needs a part named `request` holding the job as JSON", "request")
    if len(given) > 1:  # which one would count? Refused like a key given twice
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"the `request` part is given {len(given)} times; send it once", "request")
    return parse_json_body(given[0], MAX_JSON_BYTES, "the `request` part", "request"), files


def form_parts(request: flask.Request, what: str, too_large: str) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    """The text parts (their bytes as latin-1 text: _BytesFormParser) and the file parts of a
    multipart/form-data body of at most MAX_MULTIPART_BYTES, a text part at most MAX_JSON_BYTES:
    413 for a body declared larger (`what` must be at most...) or found larger (`too_large`),
    400 for one that cannot be read."""
    if (request.content_length or 0) > MAX_MULTIPART_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{what} must be at most {MAX_MULTIPART_BYTES} bytes")
    request.max_content_length = MAX_MULTIPART_BYTES  # also bounds a body sent without Content-Length
    request.max_form_memory_size = MAX_JSON_BYTES  # a text part: the same limit as the job's JSON sent any other way
    request.form_data_parser_class = _BytesFormParser  # text parts as sent, not decoded with errors="replace"
    try:
        return request.form, request.files
    except RequestEntityTooLarge:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, too_large) from None
    except HTTPException:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the multipart/form-data body cannot be read") from None


class _LosslessTextParts(MultiPartParser):
    """Werkzeug decodes a text part with the charset it declares (UTF-8 by default) and
    errors="replace", which would turn invalid UTF-8 into U+FFFD unseen. Decoded as latin-1,
    each byte is one character, and `.encode("latin-1")` gives back exactly the bytes sent,
    for parse_json_body to judge."""

    def get_part_charset(self, headers: Any) -> str:
        return "latin-1"


class _BytesFormParser(FormDataParser):
    """request.form with text parts kept as their bytes (_LosslessTextParts); otherwise werkzeug's own."""

    def _parse_multipart(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                         options: dict[str, str]) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, FileStorage]]:
        parser = _LosslessTextParts(stream_factory=self.stream_factory, max_form_memory_size=self.max_form_memory_size,
                                    max_form_parts=self.max_form_parts, cls=self.cls)
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


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
