"""Minimal MP4 structure check (top-level boxes only), usable from any test:

    from dev.simulators.mp4check import check_mp4
    boxes = check_mp4(data)   # raises ValueError when the file is not sane

Checks what a truncated or HTML "video" would fail: ftyp first, moov and mdat
present, every box header well-formed and the box sizes adding up exactly to
the file size. It does not decode media (that needs PyAV/ffprobe).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

KNOWN_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid",
                   b"meta", b"moof", b"mfra", b"sidx", b"styp", b"pdin"}


def iter_boxes(fh: BinaryIO, total: int):
    """Yield (type, offset, size, payload_head) for each top-level box."""
    pos = 0
    while pos < total:
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            raise ValueError(f"truncated box header at {pos}")
        size, kind = struct.unpack(">I4s", header)
        header_len = 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            header_len = 16
        elif size == 0:  # box runs to end of file
            size = total - pos
        if size < header_len or pos + size > total:
            raise ValueError(f"box {kind!r} at {pos} has bad size {size} (file is {total})")
        yield kind, pos, size, fh.read(min(64, size - header_len))
        pos += size


def check_mp4(data: bytes | str) -> list[tuple[bytes, int, int, bytes]]:
    """Validate bytes (or a path); return the top-level boxes."""
    import io
    import os
    in_memory = isinstance(data, (bytes, bytearray))
    total = len(data) if in_memory else os.path.getsize(data)
    fh: BinaryIO
    with io.BytesIO(data) if in_memory else open(data, "rb") as fh:
        boxes = list(iter_boxes(fh, total))
    kinds = [b[0] for b in boxes]
    if not kinds or kinds[0] != b"ftyp":
        raise ValueError(f"first box is {kinds[:1]}, not ftyp")
    for needed in (b"moov", b"mdat"):
        if needed not in kinds:
            raise ValueError(f"no {needed!r} box")
    unknown = [k for k in kinds if k not in KNOWN_TOP_LEVEL]
    if unknown:
        raise ValueError(f"unexpected top-level boxes {unknown}")
    if sum(b[2] for b in boxes) != total:  # pragma: no cover - iter_boxes guarantees it
        raise ValueError("box sizes do not add up to the file size")
    return boxes
