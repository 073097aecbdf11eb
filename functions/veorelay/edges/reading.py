"""Reading a request body within its time: a client that sends its body slowly, or holds it
open, gets `408` when its time is up, and the thread reading it is free again.

functions-framework serves with gunicorn's threaded worker, whose body reads block on the
socket without a timeout, and a read asks for a size and waits until it has it: a client
trickling a byte now and then would hold a thread (one of `cpu x 4`) for as long as it likes.
`body_deadline` puts a deadline on the whole body:

  * where the server hands over the connection (`gunicorn.socket`; `werkzeug.socket` under
    the development server), a timer shuts the socket's reading side down when the time is
    up, so a read blocked in recv() returns at once;
  * every read through `wsgi.input` checks the deadline before and after (this is all there
    is under the functions-framework test client, whose body is in memory);
  * a read that ended because the time was up raises ApiError 408, whatever the server or
    werkzeug made of the shortened body (a disconnect, an empty read).

The sizes are checked elsewhere, before this runs and while it reads: a declared
Content-Length over the limit is refused before a byte is read (edges/api.py,
edges/body.py), and a body without one is cut off one byte past the limit.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from veorelay.core.errors import ApiError, ErrorCode

READ_CHUNK = 64 * 1024


@contextmanager
def body_deadline(request: flask.Request, seconds: float) -> Iterator[None]:
    """While inside, the request's body must arrive by `seconds` from now; ApiError 408 if not.
    Call before anything reads the body (request.stream, .form, .get_data)."""
    environ = request.environ
    expired = threading.Event()
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    timer = threading.Timer(seconds, _cut_off, (sock, expired)) if hasattr(sock, "shutdown") else None
    environ["wsgi.input"] = _DeadlineStream(environ["wsgi.input"], time.monotonic() + seconds, seconds, expired)
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def read_up_to(request: flask.Request, limit: int) -> bytes:
    """The body, or its first `limit` bytes when it is longer (so one past a size limit shows a
    body over it, chunked or not). Reads until the end: a stream may answer a read with less
    than was asked. ApiError 400 if the client goes away before the end it declared."""
    data = bytearray()
    try:
        while len(data) < limit:
            chunk = request.stream.read(min(READ_CHUNK, limit - len(data)))
            if not chunk:
                break
            data += chunk
    except (HTTPException, OSError, ValueError):  # werkzeug's ClientDisconnected, a reset, gunicorn's NoMoreData
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the request body ended before its declared length") from None
    return bytes(data)


def _cut_off(sock: socket.socket, expired: threading.Event) -> None:
    expired.set()
    try:
        sock.shutdown(socket.SHUT_RD)  # a blocked recv() returns b"" now; the answer can still be written
    except OSError:
        pass  # already closed


class _DeadlineStream:
    """`wsgi.input` with the deadline checked on every read."""

    def __init__(self, inner: Any, deadline: float, seconds: float, expired: threading.Event):
        self._inner = inner
        self._deadline = deadline
        self._seconds = seconds
        self._expired = expired

    def read(self, size: int = -1) -> bytes:
        return self._call(self._inner.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._call(self._inner.readline, size)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _call(self, read: Any, size: int) -> bytes:
        self._check()
        try:
            data: bytes = read(size)
        except Exception:
            self._check()  # cut off by the timer: a disconnect, for the server
            raise
        self._check()
        return data

    def _check(self) -> None:
        if self._expired.is_set() or time.monotonic() > self._deadline:
            self._expired.set()
            raise ApiError(408, ErrorCode.INVALID_REQUEST, f"the request body did not arrive within {self._seconds:g} s")
