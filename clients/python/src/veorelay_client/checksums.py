"""Which of the checksums a job recorded for a video a download is checked against.

Every output records what Cloud Storage reports for its object: `crc32c` (base64 of the
big-endian CRC32C) and `md5` (base64); a `sha256` (hex) only where the deployment asks for one
(VEO_OUTPUT_SHA256). The strongest one this process can compute is used: sha256, else md5
(both hashlib), else crc32c when the optional `google-crc32c` package is installed. A job that
recorded none of them is checked by its size alone.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from veorelay_client.models import Output


class Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class Expected:
    """A recorded checksum: its `name` as the job spells it, its `value` as the job wrote it, how
    to compute it and how the job writes a digest (hex or base64)."""

    name: str
    value: str
    hasher: Callable[[], Hasher]
    encode: Callable[[bytes], str]

    def matches(self, hasher: Hasher) -> bool:
        return self.encode(hasher.digest()) == self.value


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _md5() -> Hasher:
    # A check against accidental damage, not a security measure (so FIPS builds allow it).
    return hashlib.md5(usedforsecurity=False)


def _crc32c() -> Callable[[], Hasher] | None:
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.Checksum


def expected_of(output: Output) -> Expected | None:
    """The checksum to check `output`'s video against, or None (size only)."""
    if output.sha256:
        return Expected("sha256", output.sha256.lower(), hashlib.sha256, bytes.hex)
    if output.md5:
        return Expected("md5", output.md5, _md5, _b64)
    crc32c = _crc32c()
    if output.crc32c and crc32c is not None:
        return Expected("crc32c", output.crc32c, crc32c, _b64)
    return None
