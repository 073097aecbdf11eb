"""A Server-Sent Events parser (the WHATWG HTML "event stream" format): lines in, messages out.

Fields `event`, `data` (several lines joined by newlines), `id` (kept across messages, as
Last-Event-ID) and `retry`; lines starting with `:` are comments (keep-alives); a blank line
ends a message; a message without data is not dispatched."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    event: str  # "message" when the stream names none
    data: str
    id: str | None  # the last event id seen so far (this message's or an earlier one's)
    retry_ms: int | None = None


def parse(lines: Iterable[str]) -> Iterator[Message]:
    """Messages from the stream's lines (without their line endings)."""
    event = ""
    data: list[str] = []
    last_id: str | None = None
    retry: int | None = None
    for line in lines:
        if not line:
            if data:
                yield Message(event=event or "message", data="\n".join(data), id=last_id, retry_ms=retry)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    # A message not ended by a blank line is incomplete: the spec drops it.
