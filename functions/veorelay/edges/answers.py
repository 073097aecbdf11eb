"""What the public `api` function's two dialects share (edges/api.py, veo-relay's own routes;
edges/openai_videos.py, OpenAI's): the request's log context, every refusal turned into an
answer (in the dialect's error shape), the method and Idempotency-Key checks, and reading a job's
body within its deadline."""
from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from typing import Any

import flask

from veorelay.core.budget import BudgetExceeded
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.edges.reading import body_deadline
from veorelay.gcp import logs
from veorelay.runtime import Runtime

RETRY_AFTER_S = 2  # a 503's Retry-After unless the failure says how long
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# (status, body) or (status, body, headers); a flask.Response (a stream) is answered as it is.
Routed = tuple[int, Any] | tuple[int, Any, dict[str, str]] | flask.Response
ErrorBody = Callable[[int, str, str, str | None], dict[str, Any]]


def native_error_body(status: int, code: str, message: str, field: str | None) -> dict[str, Any]:
    """veo-relay's error shape (ApiError.body)."""
    return {"error": {"code": code, "message": message, "field": field}}


def answer(request: flask.Request, rt: Runtime, route: Callable[[flask.Request, Runtime], Routed],
           error_body: ErrorBody = native_error_body) -> flask.Response:
    """`route`'s answer as JSON, or its refusal in `error_body`'s shape: an ApiError with its
    status (a budget's details and Retry-After; WWW-Authenticate on a 401), a TransientError as a
    503 with Retry-After, anything else a 500."""
    # Cloud Run always sends a trace; locally we start one, so a job's tasks still share it.
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent") or f"{uuid.uuid4().hex}/1"
    headers: dict[str, str] = {}
    with logs.context(trace_header=trace, project=rt.settings.project):
        try:
            routed = route(request, rt)
            if isinstance(routed, flask.Response):  # a stream (events, video bytes), answered as it is
                return routed
            status, body, *more = routed
            headers.update(*more)
        except ApiError as exc:
            logs.info("request refused", status=exc.status, code=exc.code, field=exc.field, path=request.path)
            status, body = exc.status, error_body(exc.status, exc.code, exc.message, exc.field)
            if isinstance(exc, BudgetExceeded):  # which cap, what is left, when it resets
                body["error"]["budget"] = exc.details()
                headers["Retry-After"] = str(exc.retry_after_s(utcnow()))
            if status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="veo-relay"'
        except TransientError as exc:
            logs.warning("request failed, retryable", code=exc.code, error_message=exc.message)
            status, body = 503, error_body(503, exc.code, exc.message, None)
            # Our backend (Firestore, Cloud Tasks) did not answer: the same request, sent again
            # (same Idempotency-Key), is safe.
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s or RETRY_AFTER_S)))
        except Exception:
            logs.error("request failed", exc_info=True, path=request.path)
            status, body = 500, error_body(500, ErrorCode.INTERNAL, "internal error", None)
    response = flask.make_response(flask.jsonify(body), status, headers)
    # Sent as a stream (the same bytes and Content-Length): functions-framework's after_request
    # hook reads the rest of every body first unless an answer is streamed, so a 401, 413 or
    # 408 would otherwise wait for however much, however slowly, the client still sends.
    response.response = iter([response.get_data()])
    return response


def allow(request: flask.Request, *methods: str) -> None:
    """405 unless the request uses one of `methods`."""
    if request.method not in methods:
        raise ApiError(405, ErrorCode.INVALID_REQUEST, f"use {' or '.join(methods)} here")


def idempotency_key(request: flask.Request) -> str | None:
    """The request's Idempotency-Key, if any; 400 unless it is 1-255 printable ASCII characters."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "Idempotency-Key must be 1-255 printable ASCII characters", "Idempotency-Key")
    return key


def read_job_body(request: flask.Request, rt: Runtime, multipart: Callable[[flask.Request], tuple[Any, Any]],
                  json_body: Callable[[flask.Request], Any]) -> tuple[Any, Any]:
    """(body, uploads) of a job sent as multipart/form-data (`multipart`) or JSON (`json_body`,
    uploads None), read within VEO_BODY_TIMEOUT_S (three times that for a multipart body). The
    Idempotency-Key is checked before: a declared size over the limit is refused (413) before a
    byte of the body is read (edges/reading.py)."""
    is_multipart = request.mimetype == "multipart/form-data"
    with body_deadline(request, rt.settings.body_timeout_s * (3 if is_multipart else 1)):
        return multipart(request) if is_multipart else (json_body(request), None)
