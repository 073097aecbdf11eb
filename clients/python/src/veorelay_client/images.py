"""Input images as a caller gives them (a file path, bytes, a gs:// object, an https URL) and as
the API takes them: uploaded parts of a multipart/form-data body, or inline base64 in JSON."""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeAlias

MIME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


@dataclass(frozen=True)
class Image:
    """One image: exactly one of `data` (bytes, uploaded), `gcs_uri` or `url` (read by the server)."""

    data: bytes | None = None
    gcs_uri: str | None = None
    url: str | None = None
    mime_type: str | None = None  # sniffed from the bytes when not given
    filename: str | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Image:
        file = Path(path)
        data = file.read_bytes()
        return cls(data=data, mime_type=sniff_mime_type(data) or MIME_TYPES.get(file.suffix.lower()), filename=file.name)


# A path (str or Path), bytes, "gs://bucket/object", "https://...", or an Image.
ImageLike: TypeAlias = str | os.PathLike[str] | bytes | Image


@dataclass(frozen=True)
class Reference:
    """A reference image (Veo's "ingredients"): an `asset` (a subject to keep) or a `style`."""

    image: ImageLike
    type: Literal["asset", "style"] = "asset"


def to_image(value: ImageLike) -> Image:
    if isinstance(value, Image):
        if value.data is not None and value.mime_type is None:
            return replace(value, mime_type=sniff_mime_type(value.data))
        return value
    if isinstance(value, bytes):
        return Image(data=value, mime_type=sniff_mime_type(value))
    text = os.fspath(value)
    if isinstance(value, str) and text.startswith("gs://"):
        return Image(gcs_uri=text)
    if isinstance(value, str) and text.lower().startswith(("https://", "http://")):
        return Image(url=text)
    return Image.from_file(text)


def sniff_mime_type(data: bytes) -> str | None:
    """PNG, JPEG or WebP by their magic bytes (the server decodes and checks them again)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def json_reference(image: Image, part: str, inline: bool) -> dict[str, str]:
    """The image field's JSON: a gs:// or URL source as it is; bytes as {"upload": part} (the
    multipart part that carries them) or, inline, as base64 with its mime type."""
    if image.gcs_uri is not None:
        return {"gcs_uri": image.gcs_uri}
    if image.url is not None:
        return {"url": image.url}
    if image.data is None:
        raise ValueError("an Image needs data, gcs_uri or url")
    if not inline:
        return {"upload": part}
    if image.mime_type is None:
        raise ValueError(f"{part}: not a PNG, JPEG or WebP image (give its mime_type)")
    return {"base64": base64.b64encode(image.data).decode("ascii"), "mime_type": image.mime_type}
