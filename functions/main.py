"""Cloud Functions entry points. Each only decodes its request and calls the package."""
import flask
import functions_framework
from cloudevents.http import CloudEvent

from veorelay.edges import api as public_api
from veorelay.edges.invoker import require as require_invoker
from veorelay.edges.request_objects import on_object_finalized
from veorelay.edges.scheduler import handle as sweep_edge
from veorelay.edges.tasks import run_task
from veorelay.runtime import runtime
from veorelay.steps import chain
from veorelay.steps.deliver import deliver_webhook as deliver_step
from veorelay.steps.finalize import finalize_job as finalize_step
from veorelay.steps.poll import poll_job as poll_step
from veorelay.steps.stream import stream_job as stream_step
from veorelay.steps.submit import submit_job as submit_step


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    return public_api.handle(request, runtime())


@functions_framework.http
def submit_job(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), "submit_job", lambda rt, call: submit_step(rt, call.job_id))


@functions_framework.http
def poll_job(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), "poll_job", lambda rt, call: poll_step(rt, call.job_id, chain.decode_poll(call.payload)))


@functions_framework.http
def stream_job(request: flask.Request) -> flask.Response:
    """Holds a provider's event stream for one job (veo-stream; the task's deadline covers it)."""
    return run_task(request, runtime(), "stream_job", lambda rt, call: stream_step(rt, call.job_id))


@functions_framework.http
def finalize_job(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), "finalize_job", lambda rt, call: finalize_step(rt, call.job_id, call.attempt))


@functions_framework.http
def deliver_webhook(request: flask.Request) -> flask.Response:
    return run_task(request, runtime(), "deliver_webhook",
                    lambda rt, call: deliver_step(rt, call.job_id, chain.decode_webhook(call.payload)))


@functions_framework.cloud_event
def on_request_object(event: CloudEvent) -> None:
    """Eventarc, google.cloud.storage.object.v1.finalized on the bucket: requests/*.json starts a job.
    A caller without the invoker's token is refused (401/403, raised as werkzeug's answer: nothing
    runs). Any other exception answers 500, and Eventarc delivers the event again."""
    rt = runtime()
    require_invoker(flask.request, rt, "on_request_object")  # the push's Authorization header
    on_object_finalized(rt, event["id"], event.data if isinstance(event.data, dict) else {})


@functions_framework.http
def sweep_jobs(request: flask.Request) -> flask.Response:
    return sweep_edge(request, runtime())
