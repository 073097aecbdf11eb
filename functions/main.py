"""Cloud Functions entry points. Each only decodes its request and calls the package."""
import functions_framework
import flask

from veorelay import api as public_api
from veorelay.clients import runtime
from veorelay.finalize import finalize_job as finalize_step
from veorelay.notify import deliver_webhook as deliver_step
from veorelay.polling import poll_job as poll_step
from veorelay.submission import submit_job as submit_step
from veorelay.tasks import TaskCall, run_task


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    return public_api.handle(request, runtime())


@functions_framework.http
def submit_job(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), lambda rt, call: submit_step(rt, call.job_id))


@functions_framework.http
def poll_job(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), lambda rt, call: poll_step(rt, call.job_id, _int(call, "poll", 1)))


@functions_framework.http
def finalize_job(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), lambda rt, call: finalize_step(rt, call.job_id, call.attempt))


@functions_framework.http
def deliver_webhook(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), lambda rt, call: deliver_step(rt, call.job_id, str(call.payload.get("event", ""))))


def _int(call: TaskCall, key: str, default: int) -> int:
    value = call.payload.get(key, default)
    return value if isinstance(value, int) and value > 0 else default
