"""A video being downloaded, as whoever copies it sees it: providers open one (open_output),
gcp/sink.py streams it into the bucket. Pure, no I/O."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Download(Protocol):
    content_length: int | None
    content_type: str | None

    def iter_bytes(self, chunk_size: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...
