"""The copy's hand-offs (gcp/sink.py): the download is read in blocks of the upload's chunk
size, and each block goes from the download to the upload request as the same bytes object,
never joined or sliced again, with every check (MP4 head, size, CRC32C) still made; and what
each stored video records (Cloud Storage's CRC32C and MD5, a sha256 only where asked for)."""
from __future__ import annotations

import base64
import hashlib

import google_crc32c
import pytest

from veorelay.core.errors import PermanentError, TransientError
from veorelay.gcp import sink
from veorelay.gcp.chunk_stream import ChunkStream

from .fake_storage import FakeBucket

CHUNK = 256 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


class BlockDownload:
    """A download that gives blocks of the size asked for, as requests' iter_content does,
    and remembers each object it gave."""

    def __init__(self, data: bytes, content_length: int | None = None):
        self.data = data
        self.content_length = len(data) if content_length is None else content_length
        self.content_type = "video/mp4"
        self.asked: list[int] = []
        self.given: list[bytes] = []
        self.closed = False

    def iter_bytes(self, chunk_size: int):
        self.asked.append(chunk_size)
        for start in range(0, len(self.data), chunk_size):
            block = self.data[start:start + chunk_size]
            self.given.append(block)
            yield block

    def close(self) -> None:
        self.closed = True


def video(size: int) -> bytes:
    return (MP4_HEAD + bytes(range(256)) * (size // 256 + 1))[:size]


def crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("size", [CHUNK * 3 + 1000, 8 * 1024 * 1024 + 1000])  # one request; resumable
def test_the_download_is_read_in_upload_chunks_and_stored_whole_with_its_checksums(size):
    data = video(size)
    bucket, download = FakeBucket("b"), BlockDownload(data)
    stored = sink.store_video(download, bucket, "videos/j/0.mp4", {"job_id": "j"}, CHUNK)
    assert download.asked == [CHUNK]
    assert bucket.data("videos/j/0.mp4") == data
    assert (stored.size, stored.crc32c, stored.md5, stored.sha256) == (len(data), crc32c(data), md5(data), None)
    assert stored.to_dict() == {"uri": "gs://b/videos/j/0.mp4", "name": "videos/j/0.mp4", "size": len(data),
                                "crc32c": crc32c(data), "md5": md5(data), "content_type": "video/mp4"}
    assert "sha256" not in bucket.objects["videos/j/0.mp4"].metadata  # nor a metadata patch
    assert download.closed
    one_request = size <= 8 * 1024 * 1024  # the client sends a known size up to 8 MiB in one read
    assert bucket.upload_reads == ([size] if one_request else [CHUNK] * (size // CHUNK) + [1000])


def test_a_block_that_fills_a_read_is_handed_on_as_the_same_object():
    blocks = [b"a" * 8, b"b" * 8, b"c" * 3]
    stream = ChunkStream(iter(blocks))
    assert [stream.read(8) is blocks[0], stream.read(8) is blocks[1], stream.read(8) is blocks[2]] == [True, True, True]
    assert stream.read(8) == b"" and stream.tell() == 19
    stream.seek(16)  # a resend of the last block still works
    assert stream.read(8) == b"ccc"


def test_blocks_that_do_not_line_up_are_still_cut_and_joined_right():
    stream = ChunkStream(iter([b"abcde", b"fgh", b"ijklmnop"]))
    assert [stream.read(4), stream.read(4), stream.read(4), stream.read(4)] == [b"abcd", b"efgh", b"ijkl", b"mnop"]


@pytest.mark.parametrize(("data", "length", "error"), [
    (b"\x00\x00\x00\x18moov" + bytes(CHUNK * 2), None, PermanentError),  # not an MP4
    (video(CHUNK * 2), CHUNK * 2 + 5, TransientError),  # shorter than announced
    (video(CHUNK * 2 + 5), CHUNK * 2, TransientError),  # longer than announced, past a block's end
    (video(CHUNK * 2 + 5), CHUNK * 2 - 7, TransientError),  # longer than announced, within a block
])
def test_every_check_still_holds_with_upload_sized_blocks_and_nothing_is_stored(data, length, error):
    bucket = FakeBucket("b")
    with pytest.raises(error):
        sink.store_video(BlockDownload(data, length), bucket, "videos/j/0.mp4", {}, CHUNK)
    assert bucket.names() == []


def test_a_deployment_that_asks_for_sha256s_gets_one_on_the_output_and_on_the_object():
    data = video(CHUNK * 2 + 17)
    bucket = FakeBucket("b")
    stored = sink.store_video(BlockDownload(data), bucket, "videos/j/0.mp4", {"job_id": "j"}, CHUNK, with_sha256=True)
    assert stored.sha256 == hashlib.sha256(data).hexdigest() == stored.to_dict()["sha256"]
    assert bucket.objects["videos/j/0.mp4"].metadata == {"job_id": "j", "sha256": stored.sha256}
    assert stored.crc32c == crc32c(data)


def test_bytes_stored_other_than_sent_are_removed_and_the_copy_is_retried():
    """Cloud Storage refuses a last chunk whose CRC32C differs (nothing is created); an endpoint
    that stores it anyway makes the client library raise: the damaged object must not stay
    where a retry would take it for a verified video."""
    data = video(CHUNK * 2 + 17)
    bucket = FakeBucket("b")
    bucket.damage_uploads = True
    with pytest.raises(TransientError, match="CRC32C"):
        sink.store_video(BlockDownload(data), bucket, "videos/j/0.mp4", {}, CHUNK)
    assert bucket.names() == []
    bucket.damage_uploads = False
    assert sink.store_video(BlockDownload(data), bucket, "videos/j/0.mp4", {}, CHUNK).crc32c == crc32c(data)


def test_a_video_the_provider_wrote_is_checked_by_its_head_and_moved_without_reading_it_through():
    data = video(CHUNK * 4)
    bucket = FakeBucket("b")
    bucket.put("vertex/j/sample_0.mp4", data)
    stored = sink.adopt_object(bucket, "vertex/j/sample_0.mp4", "videos/j/0.mp4", {"job_id": "j"}, CHUNK)
    assert (stored.name, stored.size, stored.crc32c, stored.md5, stored.sha256) == ("videos/j/0.mp4", len(data), crc32c(data), md5(data), None)
    assert bucket.names() == ["videos/j/0.mp4"] and bucket.bytes_read == {}
    bucket.put("vertex/k/sample_0.mp4", data)
    hashed = sink.adopt_object(bucket, "vertex/k/sample_0.mp4", "videos/k/0.mp4", {}, CHUNK, with_sha256=True)
    assert hashed.sha256 == hashlib.sha256(data).hexdigest() == bucket.objects["videos/k/0.mp4"].metadata["sha256"]


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x18ftyp", b"\x00\x00\x00\x18moovisom" + bytes(64)])
def test_a_provider_written_file_too_short_or_not_an_mp4_fails_the_output(data):
    bucket = FakeBucket("b")
    bucket.put("vertex/j/sample_0.mp4", data)
    with pytest.raises(PermanentError):
        sink.adopt_object(bucket, "vertex/j/sample_0.mp4", "videos/j/0.mp4", {}, CHUNK)
    assert bucket.names() == ["vertex/j/sample_0.mp4"]
