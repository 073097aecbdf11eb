"""The raw JSON body of a request, checked before anything is parsed further, stored or paid
for. Every refusal is an ApiError with the documented status (docs/RELIABILITY.md, "Bad
input"): 413 too large, 400 anything that is not one plain JSON document. (Images are
judged by their bytes in images.py.)
"""
from __future__ import annotations

import json
from typing import Any

from veorelay.core.errors import ApiError, ErrorCode


def parse_json_body(data: bytes, max_bytes: int) -> Any:
    """The request body as JSON, or a 4xx: too large, not UTF-8 JSON, NaN/Infinity, a key
    given twice (two parsers could disagree on which one counts), nesting too deep."""
    if len(data) > max_bytes:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body must be at most {max_bytes} bytes")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"the key {exc.key!r} appears twice in one object", exc.key) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the body is not valid JSON") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
