"""Image files for the tests, made with Pillow: real PNG, JPEG and WebP files, and the hostile
forms core/images.py decode() must refuse (each with the words its refusal carries)."""
from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def image(fmt: str = "PNG", size: tuple[int, int] = (16, 12), colour: tuple[int, int, int] = (200, 30, 30), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt, **save)
    return out.getvalue()


def png(size: tuple[int, int] = (16, 12), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    return image("PNG", size, colour)


def jpeg(size: tuple[int, int] = (16, 12), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    return image("JPEG", size, colour)


def webp(size: tuple[int, int] = (16, 12), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    return image("WEBP", size, colour)


def animated(fmt: str) -> bytes:
    out = io.BytesIO()
    first, second = Image.new("RGB", (8, 8), (0, 0, 0)), Image.new("RGB", (8, 8), (255, 255, 255))
    first.save(out, fmt, save_all=True, append_images=[second], duration=100, loop=0)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed, tiny PNG whose header declares width x height (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def png_with_broken_pixels() -> bytes:
    """Every chunk well-formed (CRCs right), but the pixel stream stops halfway: only a full
    decode finds it."""
    header = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(192)) for y in range(64)))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels[:len(pixels) // 2]) + _chunk(b"IEND", b"")


def flipped(data: bytes, at: int) -> bytes:
    broken = bytearray(data)
    broken[at] ^= 0xFF
    return bytes(broken)


ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20 + b"PK\x05\x06" + b"\x00" * 18  # an (empty) archive's shape
HTML = b"<html><script>alert(1)</script></html>"

# name -> (bytes, words the refusal's message carries)
HOSTILE: dict[str, tuple[bytes, str]] = {
    "magic-only-png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "truncated or malformed"),
    "magic-only-jpeg": (b"\xff\xd8\xff" + b"\x00" * 64, "truncated or malformed"),
    "gif": (image("GIF"), "not a PNG, JPEG or WebP"),
    "bmp": (image("BMP"), "not a PNG, JPEG or WebP"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not a PNG, JPEG or WebP"),
    "png-truncated": (png((64, 64))[:-30], "truncated or malformed"),
    "png-without-iend": (png()[:-12], "truncated or malformed"),
    "png-bad-crc": (flipped(png(), 29), "cannot be decoded"),
    "png-broken-pixel-stream": (png_with_broken_pixels(), "cannot be decoded"),
    "png-then-zip": (png() + ZIP, "bytes after the end"),
    "png-then-html": (png() + HTML, "bytes after the end"),
    "png-then-a-jpeg": (png() + jpeg(), "bytes after the end"),
    "jpeg-truncated": (jpeg((64, 64))[:-60], "truncated or malformed"),
    "jpeg-without-eoi": (jpeg()[:-2], "truncated or malformed"),
    "jpeg-then-zip": (jpeg() + ZIP, "bytes after the end"),
    "jpeg-then-a-png": (jpeg() + png(), "bytes after the end"),
    "webp-truncated": (webp((64, 64))[:-10], "truncated or malformed"),
    "webp-then-html": (webp() + HTML, "bytes after the end"),
    "png-animated": (animated("PNG"), "animated"),
    "webp-animated": (animated("WEBP"), "animated"),
    "png-bomb-declared": (png_declaring(100_000, 100_000), "pixels"),
    "png-over-the-pixel-limit": (png_declaring(5000, 5000), "5000x5000"),
    "png-too-wide": (png_declaring(9000, 10), "9000x10"),
    "png-zero-width": (png_declaring(0, 10), "decoded"),
}
