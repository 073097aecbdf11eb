"""Input images as bytes: what they are (decoded with Pillow, not only sniffed), where veo-relay
keeps them, and which gs:// objects a client may name. Pure, no I/O.

`decode` is the judgement every input image goes through before anything is stored: the magic
bytes name a type, the file's own structure must end exactly where the format says it ends
(nothing after a PNG's IEND, a JPEG's EOI or a WebP's RIFF chunk: no polyglot, no appended
archive), Pillow must read it as that very type, its dimensions (from the real header) must be
within MAX_IMAGE_SIDE and MAX_IMAGE_PIXELS, it must be one still frame, and it must decode in
full (a truncated file is refused; Pillow's LOAD_TRUNCATED_IMAGES stays off).
"""
from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ImageMime = Literal["image/png", "image/jpeg", "image/webp"]

INPUTS_PREFIX = "inputs"
# gs://<own bucket>/uploads/<client id>/...: the only part of veo-relay's bucket a client may
# name as an image (its own folder); the rest holds other clients' inputs and videos.
UPLOADS_PREFIX = "uploads"
IMAGE_EXTENSIONS: dict[ImageMime, str] = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_PIL_FORMATS: dict[ImageMime, str] = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}

# Veo takes 720p/1080p frames; 4096 x 4096 leaves room for any sensible input and bounds a
# full decode to 64 MiB (RGBA). A decompression bomb (a tiny file declaring 50000 x 50000) is
# refused from its header, before a pixel is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_SIDE = 8192
SHA_NAME_CHARS = 32  # of the sha256 in an input's object name: 128 bits


class BadImage(ValueError):
    """Why these bytes are not an image veo-relay takes (the message completes "<field> ...")."""


@dataclass(frozen=True)
class ImageInfo:
    mime: ImageMime
    width: int
    height: int
    sha256: str  # hex, of the bytes as received (and stored)


def sniff(data: bytes) -> ImageMime | None:
    """The image type the bytes say (not what the client declared), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode(data: bytes) -> ImageInfo:
    """What the image is, read from its structure and decoded in full; BadImage otherwise."""
    mime = sniff(data)
    if mime is None:
        raise BadImage("is not a PNG, JPEG or WebP image")
    label = mime.removeprefix("image/").upper()
    problem = _structure_problem(mime, data)
    if problem:
        raise BadImage(f"is not a well-formed {label} image: {problem}")
    from PIL import Image  # here: most functions never decode an image, and Pillow costs their cold start

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's own bomb guard, at our limit (2x: an error)
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x the pixel limit Pillow only warns; _check_size refuses those from the
            # header. Filtered here, not process-wide: importing core must not change global state.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[mime]]) as img:
                if img.format != _PIL_FORMATS[mime]:  # a JPEG that is really an MPO, for one
                    raise BadImage(f"decodes as {img.format}, not as the {label} its bytes start as")
                width, height = img.size
                _check_size(width, height)
                if getattr(img, "n_frames", 1) != 1:
                    raise BadImage("is animated: give one still frame")
                img.verify()  # chunk CRCs and the like, without decoding
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[mime]]) as img:
                img.load()  # every pixel: a truncated or corrupt stream fails here
    except BadImage:
        raise
    except Image.DecompressionBombError:
        raise BadImage(f"is larger than {MAX_IMAGE_PIXELS} pixels") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error... for bad files
        raise BadImage(f"cannot be decoded as {label} ({type(exc).__name__})") from None
    return ImageInfo(mime, width, height, hashlib.sha256(data).hexdigest())


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise BadImage("has no pixels")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise BadImage(f"is {width}x{height}: at most {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS} in all")


def _structure_problem(mime: ImageMime, data: bytes) -> str | None:
    """Where the format says the file ends, it must end: nothing missing, nothing after."""
    end = {"image/png": _png_end, "image/jpeg": _jpeg_end, "image/webp": _webp_end}[mime](data)
    if end is None:
        return "truncated or malformed"
    if end != len(data):
        return f"{len(data) - end} bytes after the end of the image"
    return None


def _png_end(data: bytes) -> int | None:
    """The offset just past the IEND chunk (chunks: length, type, data, CRC), or None."""
    pos, n = 8, len(data)
    while pos + 12 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if length > 0x7FFFFFFF or pos > n:
            return None
        if kind == b"IEND":
            return pos
    return None


def _jpeg_end(data: bytes) -> int | None:
    """The offset just past the EOI marker, walking the segments and the entropy-coded scans."""
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            continue
        if marker in (0x00, 0xD8) or pos + 2 > n:
            return None
        length = int.from_bytes(data[pos:pos + 2], "big")
        pos += length
        if length < 2 or pos > n:
            return None
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            scan_end = _scan_end(data, pos)
            if scan_end is None:
                return None
            pos = scan_end
    return None


def _scan_end(data: bytes, pos: int) -> int | None:
    """The offset of the first marker after an entropy-coded scan (FF00 and RSTn belong to it)."""
    while True:
        at = data.find(b"\xff", pos)
        if at < 0 or at + 1 >= len(data):
            return None
        following = data[at + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = at + 2
            continue
        return at


def _webp_end(data: bytes) -> int | None:
    """The end of the RIFF container (its size field counts what follows the first 8 bytes)."""
    if len(data) < 12:
        return None
    size = int.from_bytes(data[4:8], "little")
    end = 8 + size + (size & 1)  # a RIFF chunk is padded to an even size
    return end if end <= len(data) else None


def input_object_name(job_id: str, slot: str, info: ImageInfo) -> str:
    """inputs/<job id>/<slot>-<sha256 prefix>.<ext>: the name says which bytes it holds, so a
    request can only ever find an object with its own bytes under it (steps/images.py)."""
    return f"{INPUTS_PREFIX}/{job_id}/{slot}-{info.sha256[:SHA_NAME_CHARS]}.{IMAGE_EXTENSIONS[info.mime]}"


def uploads_folder(client_id: str) -> str:
    """The folder of veo-relay's bucket a client may name images in: uploads/<client id>/."""
    return f"{UPLOADS_PREFIX}/{client_id}/"


def gcs_source_problem(bucket: str, name: str, own_bucket: str, client_id: str, allowed_buckets: frozenset[str]) -> str | None:
    """Why a client may not have veo-relay read gs://<bucket>/<name> as its image, or None.

    veo-relay's own bucket only under uploads/<client id>/ (it holds every client's inputs and
    videos); any other bucket only when the deployment lists it (VEO_INPUT_BUCKETS)."""
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "must name an object (no empty, '.' or '..' path segments)"
    if bucket == own_bucket:
        folder = uploads_folder(client_id)
        if not name.startswith(folder):
            return f"may point into veo-relay's own bucket only under gs://{own_bucket}/{folder}"
        return None
    if bucket not in allowed_buckets:
        return f"names bucket {bucket!r}, which this deployment does not read images from (VEO_INPUT_BUCKETS)"
    return None


def split_gcs_uri(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def uploads_fingerprint(uploads: Mapping[str, bytes]) -> dict[str, str]:
    """What the uploads add to a request's fingerprint (same key + other files = another request)."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(uploads.items())}
