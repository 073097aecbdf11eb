"""The sink's iterator of download blocks as the file a resumable upload reads."""
import io

import pytest

from veorelay.gcp.chunk_stream import ChunkStream


def test_chunk_stream_reads_across_chunks_and_tells_where_it_is():
    stream = ChunkStream([b"abc", b"", b"defgh", b"ij"])
    assert stream.read(4) == b"abcd" and stream.tell() == 4
    assert stream.read(100) == b"efghij" and stream.tell() == 10
    assert stream.read(4) == b"" and stream.tell() == 10


def test_chunk_stream_goes_back_over_its_last_block_as_a_resumable_upload_retry_does():
    stream = ChunkStream(iter([b"0123", b"4567", b"89"]))
    assert stream.read(3) == b"012"
    assert stream.read(5) == b"34567"
    stream.seek(5)  # the server kept bytes 0-4: resend from 5
    assert stream.read(5) == b"56789"
    stream.seek(5)
    assert stream.read(2) == b"56" and stream.read(10) == b"789"
    with pytest.raises(io.UnsupportedOperation):
        stream.seek(0)  # older than the last block: not kept
