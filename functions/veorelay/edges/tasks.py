"""The internal functions' edge: only the invoker may call them, with an OIDC token for the
function's own URL (edges/invoker.py: 401/403 and nothing runs otherwise), and the answer tells
the queue what to do (2xx: done or permanently failed; 5xx: retry later)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask

from veorelay.core.errors import TransientError
from veorelay.core.job import JOB_ID
from veorelay.edges import invoker
from veorelay.gcp import logs
from veorelay.runtime import Runtime


@dataclass(frozen=True)
class TaskCall:
    job_id: str
    payload: dict[str, Any]
    attempt: int  # 1 on the first delivery
    queue: str


Step = Callable[[Runtime, TaskCall], None]


def run_task(request: flask.Request, rt: Runtime, entry_point: str, step: Step) -> flask.Response:
    """Run `step` for the task this request delivers to `entry_point` (its name in main.py)."""
    refused = invoker.refusal(request, rt, entry_point)
    if refused is not None:
        return refused
    # Cloud Tasks' description of the delivery: metadata for logs and attempt counts, no proof
    # of anything (the token is): a hand-made call by the invoker may come without it.
    queue = request.headers.get("X-CloudTasks-QueueName") or ""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        payload = {}  # no job_id either: dropped below
    job_id = payload.get("job_id")
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        logs.error("malformed task dropped", queue=queue, task=request.headers.get("X-CloudTasks-TaskName"))
        return _answer(200, "dropped", "malformed task")  # retrying cannot fix it
    retries = request.headers.get("X-CloudTasks-TaskRetryCount", "0")
    call = TaskCall(job_id, payload, int(retries) + 1 if retries.isdigit() else 1, queue)
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent")
    with logs.context(job_id=job_id, trace_header=trace, project=rt.settings.project):
        try:
            step(rt, call)
        except TransientError as exc:
            logs.warning("step will be retried", queue=call.queue, code=exc.code, error_message=exc.message, attempt=call.attempt)
            response = _answer(503, exc.code, exc.message)
            if exc.retry_after_s is not None:
                response.headers["Retry-After"] = str(int(exc.retry_after_s))
            return response
        except Exception:
            logs.error("step crashed; will be retried", exc_info=True, queue=call.queue, attempt=call.attempt)
            return _answer(500, "internal", "internal error")
    return _answer(200, "ok", None)


def _answer(status: int, code: str, message: str | None) -> flask.Response:
    return flask.make_response(flask.jsonify({"status": code, "message": message}), status)
