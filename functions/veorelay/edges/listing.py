"""GET /jobs: the client's own jobs, newest first, filtered, one page at a time.

Query parameters (each at most once; any other is a 400 naming it): `status` (a job status),
`provider` (a provider name), `created_after` / `created_before` (RFC 3339 timestamps with a
zone; strict bounds), `order` (`desc`, the default, or `asc`), `limit` (1..100, default 20),
`cursor` (a page's `next_cursor`).

A cursor is opaque to clients: base64url of the page's last job (id and created_at), the order
and the filters, with a digest over them and the client's id. A cursor that was changed, or is
sent by another client, is a 400 (field "cursor"); so is one sent with other filters or another
order than its own (a filter or order left out of a request that carries a cursor is the
cursor's). The digest detects a changed cursor; it is no secret, and nothing is gained by
forging one: every page is read from the caller's own jobs, with the filters of the request.
Pages are stable while jobs are added: each starts just past the last job of the one before, in
(created_at, id) order.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from veorelay.config import PROVIDER_NAMES
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import JobStatus
from veorelay.core.views import job_view
from veorelay.gcp.store import MAX_LIST_LIMIT
from veorelay.runtime import Runtime

DEFAULT_LIMIT = 20
PARAMETERS = ("status", "provider", "created_after", "created_before", "order", "limit", "cursor")
FILTERS = ("status", "provider", "created_after", "created_before", "order")
_CURSOR_VERSION = 1
_DIGEST_BYTES = 16
MAX_CURSOR_CHARS = 1024


def list_jobs(rt: Runtime, args: MultiDict[str, str], client_id: str) -> dict[str, Any]:
    """The body of GET /jobs: {"jobs": [job_view, ...], "next_cursor": str | None}."""
    given = _single_values(args)
    limit = _limit(given.get("limit"))
    filters = {name: given.get(name) for name in FILTERS}
    after: str | None = None
    after_created_at: datetime | None = None
    if given.get("cursor") is not None:
        position, cursor_filters = decode_cursor(given["cursor"], client_id)
        for name in FILTERS:
            if filters[name] is None:
                filters[name] = cursor_filters.get(name)
            elif filters[name] != cursor_filters.get(name):
                raise ApiError(400, ErrorCode.INVALID_REQUEST,
                               f"the cursor is of a listing with other filters ({name}); send the same ones, or none", "cursor")
        after, after_created_at = position
    status = filters["status"]
    if status is not None and status not in {str(s) for s in JobStatus}:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"status must be one of {', '.join(JobStatus)}", "status")
    provider = filters["provider"]
    known = sorted(set(PROVIDER_NAMES) | set(rt.providers))  # a disabled provider's jobs are still listed
    if provider is not None and provider not in known:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"provider must be one of {', '.join(known)}", "provider")
    order = filters["order"] or "desc"
    if order not in ("desc", "asc"):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "order must be desc (newest first) or asc", "order")
    created_after = _timestamp(filters["created_after"], "created_after")
    created_before = _timestamp(filters["created_before"], "created_before")
    page, has_more = rt.store.list_jobs(
        client_id, status=status, provider=provider, created_after=created_after, created_before=created_before,
        after=after, after_created_at=after_created_at, limit=limit, order="asc" if order == "asc" else "desc")
    next_cursor = None
    if has_more and page:
        last = page[-1]
        next_cursor = encode_cursor(last["id"], last["created_at"], {**filters, "order": order}, client_id)
    return {"jobs": [job_view(job) for job in page], "next_cursor": next_cursor}


def encode_cursor(job_id: str, created_at: datetime, filters: dict[str, str | None], client_id: str) -> str:
    payload = json.dumps({"v": _CURSOR_VERSION, "id": job_id, "t": created_at.isoformat(),
                          "f": {k: v for k, v in sorted(filters.items()) if v is not None}},
                         separators=(",", ":"), sort_keys=True).encode()
    return _b64(payload) + "." + _b64(_digest(payload, client_id))


def decode_cursor(cursor: str, client_id: str) -> tuple[tuple[str, datetime], dict[str, str]]:
    """((job id, created_at), filters) of a cursor this client was given; else a 400."""
    refused = ApiError(400, ErrorCode.INVALID_REQUEST, "cursor is not one this API gave you (changed, or of another client)", "cursor")
    if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise refused
    body, digest = cursor.split(".")
    try:
        payload, mac = _unb64(body), _unb64(digest)
    except (binascii.Error, ValueError):
        raise refused from None
    if not hmac.compare_digest(mac, _digest(payload, client_id)):
        raise refused
    try:
        data = json.loads(payload)
        position = (str(data["id"]), datetime.fromisoformat(data["t"]))
        filters = {str(k): str(v) for k, v in dict(data["f"]).items()}
    except (ValueError, KeyError, TypeError):
        raise refused from None
    if data.get("v") != _CURSOR_VERSION:
        raise refused
    return position, filters


def _digest(payload: bytes, client_id: str) -> bytes:
    return hmac.new(b"veo-relay job listing cursor v1", client_id.encode() + b"\0" + payload, hashlib.sha256).digest()[:_DIGEST_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not all(c.isalnum() or c in "-_" for c in text) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _single_values(args: MultiDict[str, str]) -> dict[str, str]:
    for name in args:
        if name not in PARAMETERS:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"unknown query parameter {name!r} (known: {', '.join(PARAMETERS)})", name)
        if len(args.getlist(name)) > 1:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{name} given more than once", name)
    return {name: args[name] for name in args}


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIST_LIMIT):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}", "limit")
    return int(raw)


def _timestamp(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    problem = ApiError(400, ErrorCode.INVALID_REQUEST, f"{name} must be an RFC 3339 timestamp with a zone, e.g. 2026-05-01T12:00:00Z", name)
    if not raw.isascii() or len(raw) > 40 or "T" not in raw.upper():
        raise problem
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise problem
        return value.astimezone(UTC)  # 0001-01-01T00:00:00+01:00 has no UTC time: refused too
    except (ValueError, OverflowError):
        raise problem from None
