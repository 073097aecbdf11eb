"""An object of the bucket read out in chunks, in constant memory (GET /v1/videos/{id}/content
streams a video to the client this way)."""
from __future__ import annotations

from collections.abc import Iterator

from google.api_core import exceptions as gexc
from google.cloud import storage

from veorelay.core.errors import ErrorCode, TransientError
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_RETRY

CHUNK_BYTES = 1024 * 1024


class ObjectStream:
    """The object's size and content type, and its bytes as an iterator of chunks."""

    def __init__(self, blob: storage.Blob, first: bytes, chunk_bytes: int):
        self.size = int(blob.size or 0)
        self.content_type = blob.content_type or "application/octet-stream"
        self._blob, self._first, self._chunk = blob, first, chunk_bytes

    def chunks(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        offset = len(self._first)
        while offset < self.size:
            end = min(offset + self._chunk, self.size) - 1
            data = self._blob.download_as_bytes(start=offset, end=end, timeout=GCS_CALL_S, retry=GCS_RETRY,
                                                checksum=None)
            if not data:
                return
            offset += len(data)
            yield data


def open_object(bucket: storage.Bucket, name: str, chunk_bytes: int = CHUNK_BYTES) -> ObjectStream | None:
    """The object, its first chunk already read (so a missing one is known before an answer
    starts); None when there is none. TransientError when the bucket does not answer."""
    blob = bucket.blob(name)
    try:
        blob.reload(timeout=GCS_CALL_S, retry=GCS_RETRY)
        size = int(blob.size or 0)
        first = blob.download_as_bytes(start=0, end=min(chunk_bytes, size) - 1, timeout=GCS_CALL_S, retry=GCS_RETRY,
                                       checksum=None) if size else b""
    except gexc.NotFound:
        return None
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.UNAVAILABLE, f"reading {name} failed ({type(exc).__name__}); try again") from exc
    return ObjectStream(blob, first, chunk_bytes)
