"""Cloud Functions entry points. Each only decodes its request and calls the package.

Cloud Functions loads this module for every function, each with its own entry point: an entry
point imports what it calls inside its body, and `runtime_for` builds only the clients it uses
(veorelay/runtime.py), so a function's cold start pays for its own code only (docs/BENCHMARKS.md,
Cold start; tests/unit/test_cold_start.py).
"""
import flask
import functions_framework
from cloudevents.http import CloudEvent

from veorelay.runtime import runtime_for


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    from veorelay.edges import api as public_api

    return public_api.handle(request, runtime_for("api"))


@functions_framework.http
def submit_job(request: flask.Request) -> flask.Response:
    from veorelay.edges.tasks import run_task
    from veorelay.steps.submit import submit_job as submit_step

    return run_task(request, runtime_for("submit_job"), "submit_job", lambda rt, call: submit_step(rt, call.job_id))


@functions_framework.http
def poll_job(request: flask.Request) -> flask.Response:
    from veorelay.edges.tasks import run_task
    from veorelay.steps import chain
    from veorelay.steps.poll import poll_job as poll_step

    return run_task(request, runtime_for("poll_job"), "poll_job",
                    lambda rt, call: poll_step(rt, call.job_id, chain.decode_poll(call.payload)))


@functions_framework.http
def stream_job(request: flask.Request) -> flask.Response:
    """Holds a provider's event stream for one job (veo-stream; the task's deadline covers it)."""
    from veorelay.edges.tasks import run_task
    from veorelay.steps.stream import stream_job as stream_step

    return run_task(request, runtime_for("stream_job"), "stream_job", lambda rt, call: stream_step(rt, call.job_id))


@functions_framework.http
def finalize_job(request: flask.Request) -> flask.Response:
    from veorelay.edges.tasks import run_task
    from veorelay.steps.finalize import finalize_job as finalize_step

    return run_task(request, runtime_for("finalize_job"), "finalize_job", lambda rt, call: finalize_step(rt, call.job_id, call.attempt))


@functions_framework.http
def deliver_webhook(request: flask.Request) -> flask.Response:
    from veorelay.edges.tasks import run_task
    from veorelay.steps import chain
    from veorelay.steps.deliver import deliver_webhook as deliver_step

    return run_task(request, runtime_for("deliver_webhook"), "deliver_webhook",
                    lambda rt, call: deliver_step(rt, call.job_id, chain.decode_webhook(call.payload)))


@functions_framework.cloud_event
def on_request_object(event: CloudEvent) -> None:
    """Eventarc, google.cloud.storage.object.v1.finalized on the bucket: requests/*.json starts a job.
    A caller without the invoker's token is refused (401/403, raised as werkzeug's answer: nothing
    runs). Any other exception answers 500, and Eventarc delivers the event again."""
    from veorelay.edges.invoker import require as require_invoker

    rt = runtime_for("on_request_object")
    require_invoker(flask.request, rt, "on_request_object")  # the push's Authorization header
    from veorelay.edges.request_objects import on_object_finalized

    on_object_finalized(rt, event["id"], event.data if isinstance(event.data, dict) else {})


@functions_framework.http
def provider_events(request: flask.Request) -> flask.Response:
    """Public: Gemini API webhooks and Vertex AI's Pub/Sub pushes telling that a job may be done."""
    from veorelay.edges import provider_events as provider_events_edge

    return provider_events_edge.handle(request, runtime_for("provider_events"))


@functions_framework.http
def sweep_jobs(request: flask.Request) -> flask.Response:
    from veorelay.edges.scheduler import handle as sweep_edge

    return sweep_edge(request, runtime_for("sweep_jobs"))
