"""Firestore's own value model, checked before a client's value is kept: what passes can be
written to a job document, read back equal, and serialised as strict JSON. Pure, no I/O.

The limits are Firestore's ("Collections, documents, and fields" in
https://firebase.google.com/docs/firestore/quotas), each also tried against the emulator:
- maps and arrays nest at most 20 levels, a top-level field's own map or array being level 1
  (a 21st level, even an empty map, is refused);
- an array cannot hold an array directly (an array of maps holding arrays is fine);
- a field name is valid UTF-8, not empty, at most 1,500 bytes, and does not match `__.*__`;
- a field path (the map keys from the top-level field down, joined by "."; array positions do not
  count) is at most 1,500 bytes;
- an integer is a signed 64-bit one; a string is valid UTF-8 (no lone surrogates) of at most
  1 MiB - 89 bytes.
And, for strict JSON: a number is finite (Firestore would keep NaN, but it never reads back
equal and is not JSON; `1e999` parses to infinity).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 20
MAX_FIELD_NAME_BYTES = 1500
MAX_FIELD_PATH_BYTES = 1500
MAX_STRING_BYTES = 1024 * 1024 - 89
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_RESERVED_NAME = re.compile(r"__.*__", re.DOTALL)
_SHOWN_KEY_CHARS = 80  # a key longer than this is cut short where a path is shown

Path = tuple[str | int, ...]


class NotStorable(ValueError):
    """A value Firestore (or strict JSON) cannot keep: where, as the map keys and array
    positions below the value checked, and why."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{render_path(path) or 'the value'}: {reason}")
        self.path = path
        self.reason = reason


def render_path(path: Path) -> str:
    """A path as a dotted field name for an error (`metadata.tags.0`), safe to show and to put
    in JSON: a key that is not valid Unicode is shown escaped, a very long one cut short."""
    return ".".join(_shown(part) for part in path)


def _shown(part: str | int) -> str:
    if not isinstance(part, str):
        return str(part)
    shown = part.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown if len(shown) <= _SHOWN_KEY_CHARS else shown[:_SHOWN_KEY_CHARS] + "…"


def check_field_value(field_name: str, value: Any) -> None:
    """`value` kept as the top-level field `field_name` of a document: NotStorable names the
    first part of it Firestore would refuse (its path below the field)."""
    _check(value, (), depth=0, path_bytes=len(field_name.encode("utf-8")), in_array=False)


def check_unicode(value: Any) -> None:
    """Every string and map key in `value`, however nested, is valid Unicode (UTF-8 can encode
    it: no lone surrogates, which a JSON `\\ud800` escape gives). NotStorable names the first."""
    for path, text in _strings(value):
        if not _encodes(text):
            raise NotStorable(path, "not valid Unicode (a lone surrogate)")


def _strings(value: Any) -> Iterator[tuple[Path, str]]:
    """Every string and key with its path (a key's path ends with that key). Iterative: the
    value may nest deeper than Python's recursion limit."""
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if isinstance(key, str):
                    yield (*path, key), key
                stack.append(((*path, key), child))
        elif isinstance(item, (list, tuple)):
            stack.extend(((*path, i), child) for i, child in reversed(list(enumerate(item))))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check(value: Any, path: Path, depth: int, path_bytes: int, in_array: bool) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise NotStorable(path, "an integer outside the signed 64-bit range (-2^63 to 2^63-1)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise NotStorable(path, "a number that is not finite (NaN or infinity; 1e999 overflows to infinity)")
    elif isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, (dict, list)):
        _check_container(value, path, depth + 1, path_bytes, in_array)
    else:
        raise NotStorable(path, f"a {type(value).__name__} is not a JSON value")


def _check_container(value: dict[Any, Any] | list[Any], path: Path, depth: int, path_bytes: int, in_array: bool) -> None:
    """A map or an array at `depth` (a top-level field's own value is at 1)."""
    if depth > MAX_DEPTH:
        raise NotStorable(path, f"maps and arrays nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        _check_map(value, path, depth, path_bytes)
    elif in_array:
        raise NotStorable(path, "an array directly inside an array (Firestore cannot store one)")
    else:
        for i, item in enumerate(value):
            _check(item, (*path, i), depth, path_bytes, in_array=True)


def _check_string(value: str, path: Path) -> None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise NotStorable(path, "not valid Unicode (a lone surrogate)") from None
    if size > MAX_STRING_BYTES:
        raise NotStorable(path, f"a string over {MAX_STRING_BYTES} bytes")


def _check_map(value: dict[Any, Any], path: Path, depth: int, path_bytes: int) -> None:
    for key, item in value.items():
        key_path = (*path, key)
        key_bytes = _check_name(key, key_path)
        below = path_bytes + 1 + key_bytes
        if below > MAX_FIELD_PATH_BYTES:
            raise NotStorable(key_path, f"a field path over {MAX_FIELD_PATH_BYTES} bytes (the keys down to here, joined by '.')")
        _check(item, key_path, depth, below, in_array=False)


def _check_name(key: Any, path: Path) -> int:
    """A map key as a Firestore field name; its size in bytes."""
    if not isinstance(key, str):
        raise NotStorable(path, "a key that is not a string")
    if not key:
        raise NotStorable(path, "an empty key")
    if not _encodes(key):
        raise NotStorable(path, "a key that is not valid Unicode (a lone surrogate)")
    size = len(key.encode("utf-8"))
    if size > MAX_FIELD_NAME_BYTES:
        raise NotStorable(path, f"a key over {MAX_FIELD_NAME_BYTES} bytes")
    if _RESERVED_NAME.fullmatch(key):
        raise NotStorable(path, "a key of the form __name__ (reserved by Firestore)")
    return size
