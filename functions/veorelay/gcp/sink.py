"""Stream a provider's video into GCS in constant memory, and verify it on the way.

A download is streamed straight to its final name as a resumable upload with a create-only
precondition, and the upload is finished only once the bytes are verified: a crash or a bad
download never leaves a partial object where consumers look, and a retry finishes the job
exactly once. (Videos a provider wrote into the bucket itself are verified in place and
moved with a create-only rewrite: adopt_object.)

Integrity is Cloud Storage's own: the upload sends the CRC32C of every byte with its last
chunk and Cloud Storage refuses to create an object whose bytes do not match it
(docs.cloud.google.com/storage/docs/data-validation); the object's `crc32c` and `md5` are what
`gcloud storage` and every client library check a download against, and what each output
records. A sha256 is computed as well only where a deployment asks (VEO_OUTPUT_SHA256): it is
the one hash the copy would pay for itself, about 0.6 CPU s per GiB (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import requests
import urllib3
from google.api_core import exceptions as gexc
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption

from veorelay.core.download import Download
from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.gcp import logs
from veorelay.gcp.chunk_stream import ChunkStream
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_CHUNK_S, GCS_RETRY

VIDEO_CONTENT_TYPE = "video/mp4"
_READ_CHUNK = 1024 * 1024  # reading back an object of the bucket (stored_video, adopt_object)
_MP4_HEAD_BYTES = 12


@dataclass(frozen=True)
class StoredObject:
    uri: str
    name: str
    size: int
    crc32c: str  # base64 of the big-endian CRC32C, as Cloud Storage reports it
    md5: str | None  # base64 MD5, as Cloud Storage reports it (every object veo-relay writes has one)
    content_type: str
    sha256: str | None = None  # hex; only where VEO_OUTPUT_SHA256 asks for it

    def to_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        if self.sha256 is None:
            del fields["sha256"]
        return fields


def is_mp4_head(head: bytes) -> bool:
    """An ISO BMFF file starts with a box whose type is `ftyp`: size(4) 'ftyp' brand(4)."""
    return len(head) >= _MP4_HEAD_BYTES and head[4:8] == b"ftyp"


def store_video(
    download: Download,
    bucket: storage.Bucket,
    final_name: str,
    metadata: dict[str, str],
    chunk_bytes: int,
    with_sha256: bool = False,
) -> StoredObject:
    """Stream a download to `final_name` (create-only) and return what was stored.

    The upload is resumable and GCS creates the object only when its last chunk arrives; the
    last chunk is never sent unless the download passed verification (MP4 head, every byte
    its Content-Length promised), and GCS refuses it unless the CRC32C of all the bytes sent
    matches: a failed copy leaves nothing, never a partial or damaged video. A sha256 (when
    asked for) is known only at the end, so it is added to the object's metadata right after.
    """
    if download.content_type and download.content_type.split(";")[0].strip().lower().startswith("text/"):
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the download is {download.content_type}, not a video")
    blob = bucket.blob(final_name, chunk_size=chunk_bytes)
    blob.metadata = metadata
    digest = hashlib.sha256() if with_sha256 else None
    try:
        # Read a block, upload it, read the next, in this one thread: while a chunk is being
        # sent the kernel's socket buffer keeps receiving the download. A read-ahead thread
        # measured no faster, and dearer by a third of the upload's CPU (docs/BENCHMARKS.md,
        # "Where the copy's CPU goes"). Each block is one bytes object from the socket to the
        # upload request: never joined, sliced or copied again.
        blob.upload_from_file(ChunkStream(_verified_chunks(download, digest, chunk_bytes)), rewind=False,
                              size=download.content_length, content_type=VIDEO_CONTENT_TYPE, if_generation_match=0,
                              timeout=GCS_CHUNK_S, checksum="crc32c")
    except gexc.PreconditionFailed:
        earlier = stored_video(bucket, final_name, chunk_bytes, with_sha256)
        if earlier is None:
            raise TransientError(ErrorCode.INTERNAL, f"{final_name} was reported to exist, then not found") from None
        return earlier
    except DataCorruption as exc:
        # Cloud Storage checks the CRC32C sent with the last chunk and creates nothing; an
        # endpoint that does not (an emulator) stored bytes that differ from the ones sent.
        _remove_damaged(blob)
        raise TransientError(ErrorCode.INTERNAL, "the bucket stored other bytes than were sent (CRC32C differs)") from exc
    except (TransientError, PermanentError):
        raise
    except (gexc.GoogleAPIError, requests.exceptions.RequestException, ValueError, OSError) as exc:
        # Upload side (download errors are mapped inside _verified_chunks); a CRC32C refused
        # by Cloud Storage is a 400 here: nothing was created, the retry downloads again.
        raise TransientError(ErrorCode.INTERNAL, f"writing to the bucket failed: {type(exc).__name__}") from exc
    finally:
        download.close()
    stored = _stored_object(bucket, blob)
    return _with_sha256(bucket, blob, stored, digest.hexdigest()) if digest is not None else stored


def _stored_object(bucket: storage.Bucket, blob: storage.Blob, sha256: str | None = None) -> StoredObject:
    if not blob.crc32c:
        raise TransientError(ErrorCode.INTERNAL, f"the bucket reported no CRC32C for {blob.name}")
    return StoredObject(f"gs://{bucket.name}/{blob.name}", blob.name, int(blob.size or 0), blob.crc32c, blob.md5_hash,
                        VIDEO_CONTENT_TYPE, sha256)


def _remove_damaged(blob: storage.Blob) -> None:
    try:
        blob.delete(if_generation_match=blob.generation, timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.GoogleAPIError as exc:
        logs.error("a damaged copy could not be removed", object=blob.name, error=type(exc).__name__)


def _with_sha256(bucket: storage.Bucket, blob: storage.Blob, stored: StoredObject, sha256: str) -> StoredObject:
    blob.metadata = {**(blob.metadata or {}), "sha256": sha256}
    try:
        blob.patch(timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.GoogleAPIError as exc:
        # The video is in place; a retry finds it without its hash and hashes it again.
        raise TransientError(ErrorCode.INTERNAL, f"recording the video's sha256 failed: {type(exc).__name__}") from exc
    return replace(stored, sha256=sha256)


def stored_video(bucket: storage.Bucket, name: str, chunk_bytes: int, with_sha256: bool = False) -> StoredObject | None:
    """The video an earlier attempt stored at `name`, or None. Only a verified download can
    create it, so it is kept. Should a deployment that records sha256s find it without one (an
    attempt that died before recording it, or a video stored before the setting was on), the
    object is read back once to compute it: the provider is not asked again."""
    try:
        blob = bucket.get_blob(name, timeout=GCS_CALL_S, retry=GCS_RETRY)
        if blob is None:
            return None
        recorded = (blob.metadata or {}).get("sha256")
        if recorded or not with_sha256:
            return _stored_object(bucket, blob, recorded)
        sha256 = _read_sha256(blob, chunk_bytes)
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"reading back {name} failed: {type(exc).__name__}") from exc
    return _with_sha256(bucket, blob, _stored_object(bucket, blob), sha256)


def _verified_chunks(download: Download, digest: Any | None, block_bytes: int = _READ_CHUNK) -> Iterator[bytes]:
    """The download's bytes in blocks of `block_bytes` (as the download gives them), hashed into
    `digest` if any; refuses anything that does not start like an MP4, and raises before the
    caller can finish the upload unless the bytes are exactly the ones the Content-Length
    promised (no fewer: at the end; no more: at once, and the block that reaches the
    Content-Length is handed on only once the download is seen to end there)."""
    head: bytes | None = b""  # the first bytes, until they show an MP4 header; then None
    size = 0
    try:
        source = download.iter_bytes(block_bytes)
        for chunk in source:
            if not chunk:
                continue
            if head is not None:
                head = head + chunk if head else chunk  # (a first block of 12+ bytes is not copied)
                if len(head) < _MP4_HEAD_BYTES:
                    continue
                if not is_mp4_head(head):
                    raise PermanentError(ErrorCode.DOWNLOAD_INVALID, "the download is not an MP4 (no ftyp box)",
                                         head[:64].decode("latin-1"))
                chunk, head = head, None
            if download.content_length is not None and size + len(chunk) > download.content_length:
                # The upload reads no further than the Content-Length and GCS then creates the
                # object: bytes past it must stop the copy before they are handed on (or hashed).
                raise TransientError(ErrorCode.DOWNLOAD_INVALID,
                                     f"the download is longer than the {download.content_length} bytes it announced")
            if digest is not None:
                digest.update(chunk)
            size += len(chunk)
            if size == download.content_length and any(source):
                # The upload stops at the Content-Length and creates the object with this block:
                # a download with anything after it must fail first.
                raise TransientError(ErrorCode.DOWNLOAD_INVALID,
                                     f"the download is longer than the {download.content_length} bytes it announced")
            yield chunk
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError) as exc:
        raise TransientError(ErrorCode.DOWNLOAD_INVALID, f"the download was cut off: {type(exc).__name__}") from exc
    if head is not None:
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the download is {len(head)} bytes, too short to be a video")
    if download.content_length is not None and size != download.content_length:
        raise TransientError(ErrorCode.DOWNLOAD_INVALID, f"the download ended after {size} of {download.content_length} bytes")


def _move_into_place(bucket: storage.Bucket, source: storage.Blob, final_name: str, metadata: dict[str, str]) -> storage.Blob:
    """Copy the provider's object to `final_name` (server side, create-only), then delete it.

    If the final object already exists a previous attempt got there first: keep it, it was
    verified the same way.
    """
    final: storage.Blob = bucket.blob(final_name)
    final.metadata = metadata
    final.content_type = VIDEO_CONTENT_TYPE
    try:
        token, _, _ = final.rewrite(source, if_generation_match=0, timeout=GCS_CHUNK_S, retry=GCS_RETRY)
        while token:
            token, _, _ = final.rewrite(source, token=token, if_generation_match=0, timeout=GCS_CHUNK_S, retry=GCS_RETRY)
    except gexc.PreconditionFailed:
        pass
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"moving the video into place failed: {type(exc).__name__}") from exc
    try:
        source.delete(timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.NotFound:
        pass
    except gexc.Forbidden:
        # finalize may delete in the provider's folder (infra: objectUser on vertex/), but a refusal
        # costs nothing: the copy is in place and the bucket's lifecycle rule removes the original.
        logs.info("provider's original left for the lifecycle rule", object=source.name)
    final.reload(timeout=GCS_CALL_S, retry=GCS_RETRY)
    return final


def adopt_object(bucket: storage.Bucket, source_name: str, final_name: str, metadata: dict[str, str], chunk_bytes: int,
                 with_sha256: bool = False) -> StoredObject:
    """A video a provider wrote into the bucket itself (Vertex with storageUri): checked in place
    (it exists and starts like an MP4; read through once where a sha256 is asked for), then moved
    to its final name like a download, so consumers find every job's videos in one layout. No
    bytes are uploaded again, and Cloud Storage checks a rewrite against the source's own
    checksum."""
    try:
        source = bucket.get_blob(source_name, timeout=GCS_CALL_S, retry=GCS_RETRY)
        if source is None:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the provider named gs://{bucket.name}/{source_name}, which does not exist")
        if (source.size or 0) < _MP4_HEAD_BYTES:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID,
                                 f"the video the provider wrote is {source.size or 0} bytes, too short to be a video")
        sha256 = _read_sha256(source, chunk_bytes) if with_sha256 else None
        head = source.download_as_bytes(start=0, end=_MP4_HEAD_BYTES - 1, timeout=GCS_CALL_S, retry=GCS_RETRY)
    except (TransientError, PermanentError):
        raise
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"reading the provider's video in the bucket failed: {type(exc).__name__}") from exc
    if not is_mp4_head(head):
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, "the video the provider wrote is not an MP4 (no ftyp box)", head.decode("latin-1"))
    final = _move_into_place(bucket, source, final_name, {**metadata, "sha256": sha256} if sha256 else metadata)
    return _stored_object(bucket, final, (final.metadata or {}).get("sha256", sha256))


def _read_sha256(blob: storage.Blob, chunk_bytes: int) -> str:
    """The sha256 of an object of the bucket, read through once; every byte its size says."""
    digest, size = hashlib.sha256(), 0
    with blob.open("rb", chunk_size=chunk_bytes, timeout=GCS_CHUNK_S) as reader:
        while chunk := reader.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if blob.size is not None and size != blob.size:
        raise TransientError(ErrorCode.INTERNAL, f"read {size} of the object's {blob.size} bytes")
    return digest.hexdigest()
