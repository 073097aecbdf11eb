"""The sweep's edge: Cloud Scheduler runs sweep_jobs every few minutes (steps/sweep.py)."""
from __future__ import annotations

import flask

from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps.sweep import sweep


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    """The HTTP edge. In the cloud only the scheduler's identity may invoke the function
    (IAM, OIDC); the code also refuses requests without the scheduler's (or Tasks') header."""
    if not (request.headers.get("X-CloudScheduler") or request.headers.get("X-CloudTasks-QueueName")):
        return flask.make_response(flask.jsonify({"status": "forbidden", "message": "this function is run by Cloud Scheduler only"}), 403)
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent")
    with logs.context(trace_header=trace, project=rt.settings.project):
        report = sweep(rt)
        summary = report.to_dict()
        logs.info("sweep done", deadline_exceeded=summary["deadline_exceeded"], restarted=summary["restarted"],
                  errors=report.errors, complete=report.complete)
    return flask.make_response(flask.jsonify(summary), 200)
