"""Stream a provider's video into GCS in constant memory, and verify it on the way.

The bytes go to a temporary object first; only a complete, verified video is moved to its
final name, with a create-only precondition, so a crash or a bad download never leaves a
partial object where consumers look, and a retry finishes the job exactly once.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import requests
import urllib3
from google.api_core import exceptions as gexc
from google.cloud import storage

from .errors import ErrorCode, PermanentError, TransientError
from .providers.base import Download
from .readahead import ReadAhead

VIDEO_CONTENT_TYPE = "video/mp4"
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    uri: str
    name: str
    size: int
    sha256: str
    content_type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_mp4_head(head: bytes) -> bool:
    """An ISO BMFF file starts with a box whose type is `ftyp`: size(4) 'ftyp' brand(4)."""
    return len(head) >= 12 and head[4:8] == b"ftyp"


def store_video(
    download: Download,
    bucket: storage.Bucket,
    final_name: str,
    tmp_name: str,
    metadata: dict[str, str],
    chunk_bytes: int,
) -> StoredObject:
    if download.content_type and download.content_type.split(";")[0].strip().lower().startswith("text/"):
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the download is {download.content_type}, not a video")
    tmp = bucket.blob(tmp_name, chunk_size=chunk_bytes)
    tmp.metadata = metadata
    digest = hashlib.sha256()
    size = 0
    try:
        # Read ahead up to one upload chunk, so the download flows while a chunk is uploaded.
        with ReadAhead(_verified_chunks(download), depth=chunk_bytes // _READ_CHUNK + 1) as chunks, \
                tmp.open("wb", content_type=VIDEO_CONTENT_TYPE, chunk_size=chunk_bytes, ignore_flush=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            if download.content_length is not None and size != download.content_length:
                raise TransientError(
                    ErrorCode.DOWNLOAD_INVALID,
                    f"the download ended after {size} of {download.content_length} bytes",
                )
    except (TransientError, PermanentError):
        raise
    except (gexc.GoogleAPIError, requests.exceptions.RequestException) as exc:
        # Upload side (download errors are mapped inside _verified_chunks).
        raise TransientError(ErrorCode.INTERNAL, f"writing to the bucket failed: {type(exc).__name__}") from exc
    finally:
        download.close()
    sha256 = digest.hexdigest()
    final = _promote(bucket, tmp, final_name, {**metadata, "sha256": sha256})
    return StoredObject(f"gs://{bucket.name}/{final_name}", final_name, final.size or size, final.metadata.get("sha256", sha256), VIDEO_CONTENT_TYPE)


def _verified_chunks(download: Download) -> Iterator[bytes]:
    """The download's bytes, refusing anything that does not start like an MP4."""
    head = b""
    try:
        source = download.iter_bytes(_READ_CHUNK)
        for chunk in source:
            if not chunk:
                continue
            if head is not None:
                head += chunk
                if len(head) < 12:
                    continue
                if not is_mp4_head(head):
                    raise PermanentError(ErrorCode.DOWNLOAD_INVALID, "the download is not an MP4 (no ftyp box)", head[:64].decode("latin-1"))
                chunk, head = head, None
            yield chunk
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError) as exc:
        raise TransientError(ErrorCode.DOWNLOAD_INVALID, f"the download was cut off: {type(exc).__name__}") from exc
    if head is not None:
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the download is {len(head)} bytes, too short to be a video")


def _promote(bucket: storage.Bucket, tmp: storage.Blob, final_name: str, metadata: dict[str, str]) -> storage.Blob:
    """Copy tmp → final (server side, create-only), then drop tmp.

    If the final object already exists a previous attempt got there first: keep it, it was
    verified the same way.
    """
    final = bucket.blob(final_name)
    final.metadata = metadata
    final.content_type = VIDEO_CONTENT_TYPE
    try:
        token, _, _ = final.rewrite(tmp, if_generation_match=0)
        while token:
            token, _, _ = final.rewrite(tmp, token=token, if_generation_match=0)
    except gexc.PreconditionFailed:
        pass
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"moving the video into place failed: {type(exc).__name__}") from exc
    try:
        tmp.delete()
    except gexc.NotFound:
        pass
    final.reload()
    return final
