"""Input limits checked before anything is stored or paid for: the raw JSON body, and the
pieces a request may carry inside it (images as base64, names that reach object paths).

Every refusal is an ApiError with the documented status (docs/RELIABILITY.md, "Bad input"):
400 malformed, 413 too large. Image types are decided by the bytes (magic numbers), never
by a declared mime type, so a renamed HTML page or script is not taken for a PNG.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, ErrorCode

MAX_IMAGE_BYTES = 8 * 1024 * 1024  # decoded; as request.MAX_IMAGE_BYTES
MAX_IMAGES = 5  # first frame + last frame + 3 reference images

# Magic numbers of the image types Veo accepts, checked on the decoded bytes.
_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/webp", b"WEBP", 8),  # RIFF....WEBP
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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


@dataclass(frozen=True)
class InputImage:
    data: bytes
    mime_type: str  # sniffed from the bytes


def sniff_image_type(data: bytes) -> str | None:
    """image/png, image/jpeg or image/webp by magic number; None for anything else."""
    for mime, magic, offset in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            if mime == "image/webp" and data[:4] != b"RIFF":
                continue
            return mime
    return None


def decode_image(value: Any, field: str, max_bytes: int = MAX_IMAGE_BYTES, declared_mime: str | None = None) -> InputImage:
    """A base64 image from a request: strict base64, at most max_bytes decoded, a real PNG,
    JPEG or WebP by its bytes, and (when the client declared one) the type it claims."""
    if not isinstance(value, str) or not value:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} must be a base64 string", field)
    # Size first, from the encoded length: never decode 500 MB to find out it is too big.
    if len(value) > 4 * ((max_bytes + 2) // 3) + 4:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} must be at most {max_bytes} bytes", field)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} is not valid base64", field) from None
    if len(data) > max_bytes:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{field} must be at most {max_bytes} bytes", field)
    mime = sniff_image_type(data)
    if mime is None:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} is not a PNG, JPEG or WebP image", field)
    if declared_mime is not None and declared_mime.split(";")[0].strip().lower() != mime:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} is {mime}, not {declared_mime}", field)
    return InputImage(data, mime)


def check_image_count(count: int, field: str, max_images: int = MAX_IMAGES) -> None:
    if count > max_images:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"at most {max_images} images per job", field)


def check_object_name(name: Any, field: str) -> str:
    """A client-chosen name that ends up in an object path (inputs/<job>/<name>): one plain
    path segment, so `..`, `/`, `\\`, NUL or a leading dot can never leave the job's prefix."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", field)
    return name
