"""The sweep's edge: Cloud Scheduler runs sweep_jobs every few minutes (steps/sweep.py)."""
from __future__ import annotations

import flask

from veorelay.edges import invoker
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps.sweep import sweep


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    """The HTTP edge. Only the invoker may run the sweep (IAM), and the code checks it too: Cloud
    Scheduler's OIDC token, as the invoker, for this function's URL (edges/invoker.py)."""
    refused = invoker.refusal(request, rt, "sweep_jobs")
    if refused is not None:
        return refused
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent")
    with logs.context(trace_header=trace, project=rt.settings.project):
        report = sweep(rt)
        summary = report.to_dict()
        logs.info("sweep done", deadline_exceeded=summary["deadline_exceeded"], restarted=summary["restarted"],
                  errors=report.errors, complete=report.complete)
    return flask.make_response(flask.jsonify(summary), 200)
