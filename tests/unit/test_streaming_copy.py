"""The sink's two helpers: the download read ahead in a thread, and an iterator as a file."""
import io
import threading

import pytest

from veorelay.gcp.chunk_stream import ChunkStream
from veorelay.gcp.readahead import ReadAhead


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


def test_read_ahead_yields_everything_in_order_and_stays_bounded():
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    with ReadAhead(source(), depth=3) as items:
        first = next(items)
        threading.Event().wait(0.2)
        assert len(produced) <= 1 + 3 + 1  # taken, queued, and the one waiting to be queued
        assert [first, *items] == list(range(50))


def test_read_ahead_raises_the_sources_error_in_the_consumer():
    def source():
        yield b"x"
        raise ValueError("cut off")

    with ReadAhead(source(), depth=2) as items:
        assert next(items) == b"x"
        with pytest.raises(ValueError, match="cut off"):
            next(items)


def test_leaving_early_stops_the_reader():
    stopped = threading.Event()

    def source():
        try:
            yield from range(10_000)
        finally:
            stopped.set()

    with ReadAhead(source(), depth=2) as items:
        assert next(items) == 0
    assert stopped.wait(2)
