"""The copy's hand-offs (gcp/sink.py): the download is read in blocks of the upload's chunk
size, and each block goes from the download to the upload request as the same bytes object,
never joined or sliced again, with every check (MP4 head, size, sha256) still made."""
from __future__ import annotations

import hashlib

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


@pytest.mark.parametrize("size", [CHUNK * 3 + 1000, 8 * 1024 * 1024 + 1000])  # one request; resumable
def test_the_download_is_read_in_upload_chunks_and_stored_whole_with_its_sha256(size):
    data = video(size)
    bucket, download = FakeBucket("b"), BlockDownload(data)
    stored = sink.store_video(download, bucket, "videos/j/0.mp4", {"job_id": "j"}, CHUNK)
    assert download.asked == [CHUNK]
    assert bucket.data("videos/j/0.mp4") == data
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
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
