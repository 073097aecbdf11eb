"""Input images as bytes: what type they are, where veo-relay keeps them. Pure, no I/O."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Literal

ImageMime = Literal["image/png", "image/jpeg", "image/webp"]

INPUTS_PREFIX = "inputs"
IMAGE_EXTENSIONS: dict[ImageMime, str] = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def sniff(data: bytes) -> ImageMime | None:
    """The image type the bytes say (not what the client declared), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def split_gcs_uri(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def uploads_fingerprint(uploads: Mapping[str, bytes]) -> dict[str, str]:
    """What the uploads add to a request's fingerprint (same key + other files = another request)."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(uploads.items())}
