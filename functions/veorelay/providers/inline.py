"""Videos that arrive inside a JSON answer as base64 (Vertex `bytesBase64Encoded`, newapi
`bytes_base64_encoded` with a Vertex upstream), handled without ever holding one in memory.

A poll answer is streamed through `BlobSplitter`, which takes the string values of the named
keys out of the JSON (each replaced by a short marker "@blob:<n>") and hands their text on piece
by piece; the rest, small, is parsed with ijson. To download video n the finalize step asks for
the same answer again and decodes blob n into the bucket as it arrives (`InlineVideoDownload`).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.providers.http import cut_off, send

MARKER = "@blob:"
MAX_STRUCTURE_BYTES = 1024 * 1024  # what is left of an answer once the videos are out
_READ = 256 * 1024
_SPECIAL = re.compile(rb'["\\]')
_WHITESPACE = frozenset(b" \t\r\n")
# JSON escapes a base64 text may carry: "\/" (some encoders escape every slash) and line breaks.
_BLOB_ESCAPES = {ord("/"): b"/", ord("n"): b"", ord("r"): b"", ord("t"): b""}


class BlobSplitter:
    """Streaming JSON filter: the string values of `keys` go to `on_piece(n, text)` instead of
    the output. Only string boundaries are tracked (a quote, a backslash): the bytes inside a
    string are skipped with a regex search, so a 100 MB answer costs little CPU."""

    def __init__(self, keys: Iterable[str], on_piece: Callable[[int, bytes], None]):
        self._keys = {k.encode() for k in keys}
        self._on_piece = on_piece
        self.count = 0
        self._in_string = False
        self._escape = False
        self._divert = False
        self._text = bytearray()  # the current ordinary string, kept while short (it may be a key)
        self._last: bytes | None = None  # the last ordinary string, until we see what follows it
        self._want_blob = False  # a blob key and its ':' were seen: the next string is a blob

    # One byte-level state machine over the hot loop: split up, its state (position, output,
    # flags) would travel through calls and return values for every string boundary.
    def feed(self, data: bytes) -> bytes:  # noqa: C901, PLR0912, PLR0915
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            if self._in_string:
                if self._escape:
                    self._escape = False
                    char = data[i]
                    i += 1
                    if self._divert:
                        if char not in _BLOB_ESCAPES:
                            raise ValueError(f"unexpected escape \\{chr(char)} in an inline video")
                        if _BLOB_ESCAPES[char]:
                            self._on_piece(self.count - 1, _BLOB_ESCAPES[char])
                    else:
                        out += b"\\" + bytes([char])
                        self._keep(b"\\" + bytes([char]))
                    continue
                match = _SPECIAL.search(data, i)
                end = match.start() if match else n
                if end > i:
                    if self._divert:
                        self._on_piece(self.count - 1, data[i:end])
                    else:
                        out += data[i:end]
                        self._keep(data[i:end])
                i = end
                if match is None:
                    break
                i += 1
                if data[end] == 0x5C:  # backslash: the escaped character comes next
                    self._escape = True
                    continue
                self._in_string = False  # closing quote
                out += b'"'
                if self._divert:
                    self._divert = False
                else:
                    self._last = bytes(self._text) if len(self._text) <= 64 else None
                continue
            char = data[i]
            i += 1
            if char == 0x22:  # an opening quote
                self._in_string = True
                if self._want_blob:
                    self._divert, self._want_blob = True, False
                    out += f'"{MARKER}{self.count}'.encode()
                    self.count += 1
                else:
                    out += b'"'
                    self._text.clear()
                self._last = None
            elif char in _WHITESPACE:
                out.append(char)
            elif char == 0x3A:  # ':' after a key
                self._want_blob = self._last in self._keys
                self._last = None
                out.append(char)
            else:
                self._want_blob = False
                self._last = None
                out.append(char)
        return bytes(out)

    @property
    def in_blob(self) -> bool:
        return self._in_string and self._divert

    def _keep(self, piece: bytes) -> None:
        if len(self._text) <= 64:
            self._text += piece[:65]


class Base64Stream:
    """Decodes base64 text fed in arbitrary pieces; strict about the alphabet."""

    def __init__(self) -> None:
        self._rest = b""
        self.size = 0
        self.head = b""

    def feed(self, text: bytes) -> bytes:
        text = self._rest + text
        cut = len(text) - len(text) % 4
        self._rest = text[cut:]
        return self._decode(text[:cut])

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        if rest:  # unpadded tail
            rest += b"=" * (-len(rest) % 4)
        return self._decode(rest)

    def _decode(self, text: bytes) -> bytes:
        if not text:
            return b""
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"an inline video is not valid base64: {exc}") from None
        if len(self.head) < 16:
            self.head += data[: 16 - len(self.head)]
        self.size += len(data)
        return data


@dataclass(frozen=True)
class InlineAnswer:
    doc: Any  # the JSON answer, each blob replaced by "@blob:<n>"
    blob_sizes: tuple[int, ...]  # decoded bytes of blob n

    def blob_index(self, value: Any) -> int | None:
        if isinstance(value, str) and value.startswith(MARKER) and value[len(MARKER):].isdigit():
            return int(value[len(MARKER):])
        return None


def open_json_stream(session: requests.Session, provider: str, method: str, url: str, **kwargs: Any) -> requests.Response:
    """The answer, streamed (the caller closes it); failures mapped by providers/http.py."""
    return send(session, provider, method, url, stream=True, **kwargs)


def fetch_inline_json(session: requests.Session, provider: str, method: str, url: str, keys: Iterable[str], **kwargs: Any) -> InlineAnswer:
    """A JSON answer whose `keys` may hold whole videos: parsed in constant memory, each video
    decoded once on the way (so a corrupt one is noticed now) and counted, then dropped."""
    resp = open_json_stream(session, provider, method, url, **kwargs)
    decoders: list[Base64Stream] = []

    def on_piece(n: int, text: bytes) -> None:
        while len(decoders) <= n:
            decoders.append(Base64Stream())
        decoders[n].feed(text)

    import ijson  # only where an inline answer is read (finalize), not at every cold start

    splitter = BlobSplitter(keys, on_piece)
    try:
        doc = next(ijson.items(_Filtered(resp.iter_content(_READ), splitter, MAX_STRUCTURE_BYTES), "", use_float=True))
        for decoder in decoders:
            decoder.finish()
    except (ijson.JSONError, StopIteration, ValueError) as exc:
        raise TransientError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"{provider} answered {resp.status_code} with a body that is not the expected JSON ({type(exc).__name__})",
            str(exc)[:300],
        ) from exc
    except requests.RequestException as exc:
        raise cut_off(exc, provider) from exc
    finally:
        resp.close()
    while len(decoders) < splitter.count:  # empty blobs ("") never produced a piece
        decoders.append(Base64Stream())
    return InlineAnswer(doc, tuple(d.size for d in decoders))


class _Filtered:
    """File-like view of an answer with its blobs taken out, for ijson."""

    def __init__(self, chunks: Iterator[bytes], splitter: BlobSplitter, limit: int):
        self._chunks = iter(chunks)
        self._splitter = splitter
        self._limit = limit
        self._seen = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes the type of the source with read(0)
            return b""
        for chunk in self._chunks:
            out = self._splitter.feed(chunk)
            self._seen += len(out)
            if self._seen > self._limit:
                raise ValueError(f"the answer holds more than {self._limit} bytes besides its videos")
            if out:
                return out
        return b""


class InlineVideoDownload:
    """Download of blob `ordinal` of an answer asked for again: decoded as it streams in."""

    content_type: str | None = "video/mp4"

    def __init__(self, resp: requests.Response, keys: Iterable[str], ordinal: int, size: int | None):
        self._resp = resp
        self._keys = tuple(keys)
        self._ordinal = ordinal
        self.content_length = size

    def iter_bytes(self, chunk_size: int) -> Iterator[bytes]:
        decoder = Base64Stream()
        pending: list[bytes] = []

        def on_piece(n: int, text: bytes) -> None:
            if n == self._ordinal:
                pending.append(decoder.feed(text))

        splitter = BlobSplitter(self._keys, on_piece)
        try:
            for chunk in self._resp.iter_content(_READ):
                splitter.feed(chunk)
                if pending:
                    data = b"".join(pending)
                    pending.clear()
                    if data:
                        yield data
                if splitter.count > self._ordinal + 1 or (splitter.count == self._ordinal + 1 and not splitter.in_blob):
                    break  # our blob is complete: no need to read the rest of the answer
            tail = decoder.finish()
            if tail:
                yield tail
        except ValueError as exc:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, str(exc)[:300]) from exc
        if splitter.count <= self._ordinal:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the answer no longer holds video {self._ordinal}")

    def close(self) -> None:
        self._resp.close()
