"""A read-only file over an iterator of byte chunks, for `Blob.upload_from_file`.

Handing the upload a file (rather than writing into a BlobWriter) puts a download on the
very code path of a plain file upload: the client reads one upload chunk, sends it, reads
the next. A resumable upload only ever goes back to the start of the block it last read
(to resend it after a failed request), so that block is all this keeps.

A source chunk that fits a read whole is handed on as the very bytes object it is: a source
whose chunks are the reader's block size (the sink's) is never joined or copied here.
"""
from __future__ import annotations

import io
from collections.abc import Iterable


class ChunkStream:
    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._pos = 0
        self._last = b""  # the block read() returned last: positions [pos - len, pos)
        self._replay = b""  # bytes of _last to give again after a seek back
        self._leftover = memoryview(b"")  # the part of a source chunk not returned yet

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # within the last block only, which is what a resumable upload needs

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset}.get(whence)
        if target is None:
            raise io.UnsupportedOperation("seek from the end of a stream")
        # The replay is the tail of _last; its start is where the stream logically stands.
        block_start = self._pos - (len(self._last) - len(self._replay))
        if not block_start <= target <= self._pos + len(self._replay):
            raise io.UnsupportedOperation(f"cannot seek to {target}: only the last block ({block_start}+) is kept")
        self._replay = self._last[target - block_start:]
        self._pos = target
        return target

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes | memoryview] = []
        want = size if size is not None and size >= 0 else float("inf")
        got = 0
        if self._replay:
            piece = self._replay[: int(min(want, len(self._replay)))]
            self._replay = self._replay[len(piece):]
            parts.append(piece)
            got += len(piece)
        while got < want:
            if not self._leftover:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                if len(chunk) <= want - got:  # fits whole: no view, no copy
                    parts.append(chunk)
                    got += len(chunk)
                    continue
                self._leftover = memoryview(chunk)
            view = self._leftover[: int(min(want - got, len(self._leftover)))]
            self._leftover = self._leftover[len(view):]
            parts.append(view)
            got += len(view)
        block = parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
        self._pos += len(block)
        if block:  # an empty read at the end must not forget the last block
            self._last = block
        return block
