"""Videos inside JSON answers: taken out as they stream, decoded piece by piece, never whole."""
import base64
import json
import random

import pytest

from veorelay.core.errors import PermanentError, TransientError
from veorelay.providers.inline import BlobSplitter, InlineVideoDownload, fetch_inline_json

VIDEO_A = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
VIDEO_B = b"\x00\x00\x00\x18ftypisom" + b"\x07" * 5001


def split(doc_bytes: bytes, keys=("bytesBase64Encoded",), chunk: int | None = None):
    pieces: dict[int, bytearray] = {}
    splitter = BlobSplitter(keys, lambda n, text: pieces.setdefault(n, bytearray()).extend(text))
    out = bytearray()
    step = chunk or len(doc_bytes)
    for i in range(0, len(doc_bytes), step):
        out += splitter.feed(doc_bytes[i:i + step])
    return json.loads(out), {n: bytes(v) for n, v in pieces.items()}, splitter.count


def vertex_answer(*videos: bytes, escape_slashes: bool = False) -> bytes:
    doc = {"name": "projects/p/locations/l/publishers/google/models/m/operations/1", "done": True,
           "response": {"@type": "x", "videos": [{"bytesBase64Encoded": base64.b64encode(v).decode(), "mimeType": "video/mp4"} for v in videos]}}
    text = json.dumps(doc)
    return (text.replace("/", "\\/") if escape_slashes else text).encode()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, None])
def test_blobs_are_taken_out_whatever_the_chunking(chunk):
    doc, pieces, count = split(vertex_answer(VIDEO_A, VIDEO_B), chunk=chunk)
    assert count == 2
    assert [v["bytesBase64Encoded"] for v in doc["response"]["videos"]] == ["@blob:0", "@blob:1"]
    assert doc["name"].endswith("/operations/1") and doc["done"] is True
    assert base64.b64decode(pieces[0]) == VIDEO_A and base64.b64decode(pieces[1]) == VIDEO_B


def test_escaped_slashes_and_line_breaks_inside_a_blob_are_undone():
    encoded = base64.encodebytes(VIDEO_A).decode()  # MIME style: a line break every 76 characters
    raw = json.dumps({"bytes_base64_encoded": encoded}).replace("/", "\\/").encode()
    doc, pieces, _ = split(raw, keys=("bytes_base64_encoded",), chunk=5)
    assert doc == {"bytes_base64_encoded": "@blob:0"}
    assert base64.b64decode(pieces[0]) == VIDEO_A


def test_the_key_must_be_a_key_and_other_strings_pass_untouched():
    raw = json.dumps({"note": "bytesBase64Encoded", "list": ["bytesBase64Encoded", "x"], "quote": 'say "bytesBase64Encoded": "no"',
                      "bytesBase64Encoded": None, "n": 1.5}).encode()
    doc, pieces, count = split(raw, chunk=3)
    assert count == 0 and pieces == {}
    assert doc == json.loads(raw)


def test_an_empty_blob_counts_and_has_no_text():
    doc, pieces, count = split(b'{"data":{"bytes_base64_encoded":"","url":"https://x/y"}}', keys=("bytes_base64_encoded",))
    assert count == 1 and pieces == {} and doc["data"]["bytes_base64_encoded"] == "@blob:0"


class FakeResponse:
    def __init__(self, body: bytes, status: int = 200, chunk: int = 997):
        self.body, self.status_code, self.chunk = body, status, chunk
        self.closed = False
        self.headers = {"Content-Type": "application/json"}
        self.text = body.decode("utf-8", "replace")

    def iter_content(self, size):
        for i in range(0, len(self.body), self.chunk):
            yield self.body[i:i + self.chunk]

    def close(self):
        self.closed = True


class FakeSession:
    def __init__(self, resp):
        self.resp = resp

    def request(self, method, url, **kwargs):
        assert kwargs["stream"] is True
        return self.resp


def test_a_poll_answer_is_parsed_with_its_videos_counted_not_kept():
    resp = FakeResponse(vertex_answer(VIDEO_A, VIDEO_B))
    answer = fetch_inline_json(FakeSession(resp), "vertex", "POST", "https://x", ("bytesBase64Encoded",))
    assert answer.blob_sizes == (len(VIDEO_A), len(VIDEO_B))
    assert answer.blob_index(answer.doc["response"]["videos"][1]["bytesBase64Encoded"]) == 1
    assert resp.closed


@pytest.mark.badinput
@pytest.mark.parametrize("body", [b'{"name": "operations/trunc', b"<html>busy</html>", b'{"videos":[{"bytesBase64Encoded":"!!!!"}]}'])
def test_an_answer_that_is_not_the_expected_json_is_retried(body):
    with pytest.raises(TransientError):
        fetch_inline_json(FakeSession(FakeResponse(body)), "vertex", "POST", "https://x", ("bytesBase64Encoded",))


@pytest.mark.parametrize("ordinal,video", [(0, VIDEO_A), (1, VIDEO_B)])
def test_a_download_decodes_one_blob_as_it_streams(ordinal, video):
    resp = FakeResponse(vertex_answer(VIDEO_A, VIDEO_B, escape_slashes=True), chunk=333)
    download = InlineVideoDownload(resp, ("bytesBase64Encoded",), ordinal, len(video))
    chunks = list(download.iter_bytes(1024))
    assert b"".join(chunks) == video and len(chunks) > 1  # several pieces: never one whole buffer
    assert download.content_length == len(video) and download.content_type == "video/mp4"


@pytest.mark.faults
def test_a_download_whose_blob_is_gone_fails_permanently():
    download = InlineVideoDownload(FakeResponse(vertex_answer(VIDEO_A)), ("bytesBase64Encoded",), 1, 10)
    with pytest.raises(PermanentError) as failed:
        list(download.iter_bytes(1024))
    assert failed.value.code == "download_invalid"


def test_random_json_round_trips_through_the_splitter():
    rng = random.Random(7)
    for _ in range(50):
        doc = {"k" + str(i): rng.choice([1, "s\\\"x", None, [1, {"a": "b"}], "ü/\n"]) for i in range(rng.randint(0, 6))}
        raw = json.dumps(doc).encode()
        got, _, count = split(raw, chunk=rng.randint(1, 9))
        assert got == doc and count == 0
