"""google.cloud.storage's Bucket and Blob as the code uses them, in memory: local properties
until a call sends them, NotFound where GCS answers 404, create-only preconditions honoured,
and uploads that read their stream as the client library does (see FakeBlob.upload_from_file)."""
from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import google_crc32c
from google.api_core import exceptions as gexc
from google.cloud.storage.exceptions import DataCorruption

from .faults import Faults

CHUNK_SIZE_MULTIPLE = 256 * 1024  # google.cloud.storage.Blob refuses other chunk sizes
MAX_MULTIPART_SIZE = 8 * 1024 * 1024  # a known size up to this is sent in one request
DEFAULT_CHUNK_SIZE = 100 * 1024 * 1024  # a resumable upload's chunk when the blob sets none


@dataclass
class StoredBlob:
    data: bytes
    generation: int
    metadata: dict[str, str] | None
    content_type: str | None


class FakeStorageClient:
    """Holds the buckets, so `bucket.client.bucket(other)` reaches another bucket."""

    def __init__(self) -> None:
        self._buckets: dict[str, FakeBucket] = {}

    def bucket(self, name: str) -> FakeBucket:
        if name not in self._buckets:
            self._buckets[name] = FakeBucket(name, self)
        return self._buckets[name]


class FakeBucket:
    def __init__(self, name: str, client: FakeStorageClient | None = None):
        self.name = name
        self.client = client or FakeStorageClient()
        self.objects: dict[str, StoredBlob] = {}
        self.faults = Faults()
        self.upload_reads: list[int] = []  # the size each upload asked its stream for, in order
        self.rewrite_steps = 1  # calls a rewrite takes (each but the last answers a token)
        self.bytes_read: dict[str, int] = {}  # object name -> bytes its readers (FakeBlob.open) returned
        # An endpoint that stores other bytes than were sent and does not check the CRC32C sent
        # with the last chunk (as an emulator may): the object is created, then the client
        # library raises DataCorruption comparing the CRC32C it computed with the stored one.
        self.damage_uploads = False
        self._generation = 1000

    # --- the google.cloud.storage.Bucket interface

    def blob(self, name: str, chunk_size: int | None = None, generation: int | None = None) -> FakeBlob:
        return FakeBlob(self, name, chunk_size, generation)

    def get_blob(self, name: str, **_: Any) -> FakeBlob | None:
        self.faults.check("get_blob", name)
        stored = self.objects.get(name)
        if stored is None:
            return None
        blob = FakeBlob(self, name)
        blob._load(stored)
        return blob

    # --- for tests

    def names(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self.objects if n.startswith(prefix))

    def data(self, name: str) -> bytes:
        return self.objects[name].data

    def put(self, name: str, data: bytes, metadata: dict[str, str] | None = None, content_type: str | None = None) -> None:
        """An object written by someone else (a provider, a client)."""
        self._create(name, data, metadata, content_type)

    def _create(self, name: str, data: bytes, metadata: dict[str, str] | None, content_type: str | None) -> StoredBlob:
        self._generation += 1
        stored = StoredBlob(bytes(data), self._generation, dict(metadata) if metadata is not None else None, content_type)
        self.objects[name] = stored
        return stored

    def _precondition(self, name: str, if_generation_match: int | None) -> None:
        if if_generation_match is None:
            return
        current = self.objects.get(name)
        if (current.generation if current else 0) != if_generation_match:
            raise gexc.PreconditionFailed(f"At least one of the pre-conditions you specified did not hold: {name}")


class FakeBlobReader(io.BytesIO):
    """google.cloud.storage.fileio.BlobReader over a stored object's bytes."""

    def __init__(self, bucket: FakeBucket, name: str, data: bytes):
        super().__init__(data)
        self._bucket, self._name = bucket, name

    def read(self, size: int | None = -1) -> bytes:
        self._bucket.faults.check("read", self._name)
        data = super().read(size)
        self._bucket.bytes_read[self._name] = self._bucket.bytes_read.get(self._name, 0) + len(data)
        return data

    def read1(self, size: int | None = -1) -> bytes:
        return self.read(size)


class FakeBlob:
    """The google.cloud.storage.Blob calls the code makes: local properties until a call
    sends them, a NotFound where GCS answers 404, create-only preconditions honoured."""

    def __init__(self, bucket: FakeBucket, name: str, chunk_size: int | None = None, generation: int | None = None):
        if chunk_size is not None and chunk_size > 0 and chunk_size % CHUNK_SIZE_MULTIPLE:
            raise ValueError(f"Chunk size must be a multiple of {CHUNK_SIZE_MULTIPLE}.")
        self.bucket = bucket
        self.name = name
        self.chunk_size = chunk_size
        self.generation = generation
        self.metadata: dict[str, str] | None = None
        self.content_type: str | None = None
        self.size: int | None = None
        self.md5_hash: str | None = None  # as GCS reports them: base64 of the digest
        self.crc32c: str | None = None

    def upload_from_file(self, file_obj: Any, rewind: bool = False, size: int | None = None,
                         content_type: str | None = None, if_generation_match: int | None = None, **_: Any) -> None:
        """As the client does it: a known size up to 8 MiB in one read and one request;
        otherwise a resumable upload, one chunk_size read per request, the object created by
        the last one. A read that raises, or a stream shorter than `size`, creates nothing."""
        if rewind:
            file_obj.seek(0)
        bucket = self.bucket
        bucket.faults.check("upload", self.name)
        if size is not None and size <= MAX_MULTIPART_SIZE:
            bucket.upload_reads.append(size)
            data = file_obj.read(size)
            if len(data) < size:
                raise ValueError(f"Size {size} was specified but the file-like object only had {len(data)} bytes remaining.")
            bucket.faults.check("upload_chunk", self.name)
        else:
            bucket._precondition(self.name, if_generation_match)  # checked when the session starts
            data = self._read_resumable(file_obj, size)
        bucket._precondition(self.name, if_generation_match)
        stored = data if not bucket.damage_uploads else bytes([data[0] ^ 1]) + data[1:]
        self._load(bucket._create(self.name, stored, self.metadata, content_type or self.content_type or "application/octet-stream"))
        if stored != data:
            raise DataCorruption(None, f"Checksum mismatch while uploading {self.name}")

    def _read_resumable(self, stream: Any, total: int | None) -> bytes:
        """google.resumable_media's get_next_chunk, chunk after chunk, until the final one."""
        chunk = self.chunk_size or DEFAULT_CHUNK_SIZE
        parts: list[bytes] = []
        sent = 0
        while True:
            want = total - sent if total is not None and sent + chunk >= total > 0 else chunk
            self.bucket.upload_reads.append(want)
            payload = stream.read(want)
            if total is None and len(payload) < chunk:
                total = sent + len(payload)  # a short read is the last chunk
            elif total is not None and total > 0 and not payload:
                raise ValueError("Stream is already exhausted. There is no content remaining.")
            self.bucket.faults.check("upload_chunk", self.name)
            parts.append(payload)
            sent += len(payload)
            if total is not None and sent >= total:
                return b"".join(parts)

    def upload_from_string(self, data: bytes | str, content_type: str = "text/plain",
                           if_generation_match: int | None = None, **_: Any) -> None:
        self.bucket.faults.check("upload", self.name)
        raw = data.encode() if isinstance(data, str) else data
        self.bucket._precondition(self.name, if_generation_match)
        self._load(self.bucket._create(self.name, raw, self.metadata, content_type))

    def download_as_bytes(self, start: int | None = None, end: int | None = None, **_: Any) -> bytes:
        """The object, or bytes start..end (both included) as a range request gives them."""
        self.bucket.faults.check("download", self.name)
        data = self._stored().data
        return data if start is None and end is None else data[start or 0:None if end is None else end + 1]

    def open(self, mode: str = "r", chunk_size: int | None = None, **_: Any) -> FakeBlobReader:
        """As Blob.open("rb") gives a BlobReader: seekable, read through (what each reader took is
        added to `bucket.bytes_read[name]`), and a "read" fault raises in the middle of a read."""
        if mode != "rb":
            raise NotImplementedError(f"FakeBlob.open({mode!r})")
        self.bucket.faults.check("open", self.name)
        return FakeBlobReader(self.bucket, self.name, self._stored().data)

    def exists(self, **_: Any) -> bool:
        self.bucket.faults.check("exists", self.name)
        return self.name in self.bucket.objects

    def delete(self, **_: Any) -> None:
        self.bucket.faults.check("delete", self.name)
        if self.bucket.objects.pop(self.name, None) is None:
            raise gexc.NotFound(f"No such object: {self.bucket.name}/{self.name}")

    def reload(self, **_: Any) -> None:
        self.bucket.faults.check("reload", self.name)
        self._load(self._stored())

    def patch(self, **_: Any) -> None:
        """Sends the metadata set locally (a key set to None is removed, others are kept)."""
        self.bucket.faults.check("patch", self.name)
        stored = self._stored()
        if self.metadata is not None:
            merged = {**(stored.metadata or {}), **self.metadata}
            stored.metadata = {k: str(v) for k, v in merged.items() if v is not None}
        if self.content_type is not None:
            stored.content_type = self.content_type
        self._load(stored)

    def rewrite(self, source: FakeBlob, token: str | None = None, if_generation_match: int | None = None,
                **_: Any) -> tuple[str | None, int, int]:
        """A server-side copy; big ones take several calls (`bucket.rewrite_steps`)."""
        bucket = self.bucket
        bucket.faults.check("rewrite", self.name)
        src = source.bucket.objects.get(source.name)
        if src is None:
            raise gexc.NotFound(f"No such object: {source.bucket.name}/{source.name}")
        step = int(token.removeprefix("step-")) if token else 0
        if step + 1 < bucket.rewrite_steps:
            return f"step-{step + 1}", len(src.data) * (step + 1) // bucket.rewrite_steps, len(src.data)
        bucket._precondition(self.name, if_generation_match)
        metadata = self.metadata if self.metadata is not None else src.metadata
        content_type = self.content_type or src.content_type
        self._load(bucket._create(self.name, src.data, metadata, content_type))
        return None, len(src.data), len(src.data)

    def generate_signed_url(self, expiration: timedelta | None = None, method: str = "GET", **_: Any) -> str:
        self.bucket.faults.check("sign", self.name)
        seconds = int(expiration.total_seconds()) if expiration is not None else 3600
        return f"https://storage.fake/{self.bucket.name}/{self.name}?X-Goog-Expires={seconds}&X-Goog-Signature=fake"

    def _stored(self) -> StoredBlob:
        stored = self.bucket.objects.get(self.name)
        if stored is None or (self.generation is not None and stored.generation != self.generation):
            raise gexc.NotFound(f"No such object: {self.bucket.name}/{self.name}")
        return stored

    def _load(self, stored: StoredBlob) -> None:
        self.size = len(stored.data)
        self.md5_hash = base64.b64encode(hashlib.md5(stored.data).digest()).decode()
        self.crc32c = base64.b64encode(google_crc32c.Checksum(stored.data).digest()).decode()
        self.generation = stored.generation
        self.metadata = dict(stored.metadata) if stored.metadata is not None else None
        self.content_type = stored.content_type
