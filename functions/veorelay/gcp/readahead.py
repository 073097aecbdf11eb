"""Read an iterator ahead in a thread, into a bounded queue.

The sink alternates between reading the provider's download and uploading a chunk to GCS;
done in turn, every upload stalls the download (and the reverse). With the download read
ahead while a chunk is being uploaded, a copy takes about as long as the slower side alone.
The queue holds at most `depth` items, so memory stays constant whatever the video's size.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


class _End:
    """The source is exhausted."""


_END = _End()


class ReadAhead(Iterator[T]):
    """`with ReadAhead(source, depth) as items: for item in items: ...`

    An exception raised by `source` is raised by the iteration, in the consumer's thread.
    Leaving the block early stops the reader; it exits at its next item.
    """

    def __init__(self, source: Iterator[T], depth: int):
        self._source = source
        self._queue: queue.Queue[T | _Raised | _End] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="readahead", daemon=True)

    def __enter__(self) -> ReadAhead[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for _ in range(40):  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)
            if not self._thread.is_alive():
                return
        # Still inside source's next() (a stalled download): closing the source ends it; the
        # thread is a daemon and, the stop flag set, hands nothing further to anyone.

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if isinstance(item, _End):
            self._queue.put(_END)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Raised):
            raise item.exc
        return item

    def _pump(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:
            self._put(_Raised(exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:  # a generator left early runs its cleanup now, not at GC
                close()

    def _put(self, item: T | _Raised | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc
