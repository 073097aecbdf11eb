"""One cold start, in a fresh process, so the parent reads this process's peak RSS.

    python -m bench.cold_once entry poll_job       # import main, the entry point's first request
    python -m bench.cold_once baseline poll_job firestore,tasks   # functions-framework + those clients

entry:    what a Cloud Functions instance does before it answers its first request: import
          functions/main.py and call the entry point, which imports its own modules and builds
          its clients (veorelay/runtime.py CLIENTS). The call carries no invoker token, so it is
          refused (401) at the edge: nothing past it runs, nothing is sent to a backend.
baseline: the floor for that entry point: functions-framework imported and the Google clients
          it uses (Firestore, Cloud Tasks, Cloud Storage: the same list) imported and built, and
          the same stand-in request made (the harness's own cost, on both sides).
Prints one JSON line: {"mode", "entry", "seconds", "cpu_s", "status"}; seconds and cpu_s are from
the first import to the built clients (the interpreter's own start is the same for both). For
api and on_request_object, "schema_cpu_s" is then what their first validated request adds once
per instance: importing the request schema (pydantic), which a refused call never loads.
Environment: as bench/cold_start.py sets it (emulator hosts on closed ports: clients are built,
never called).
"""
from __future__ import annotations

import sys
import time

_T0, _C0 = time.perf_counter(), time.process_time()

import json  # noqa: E402
import os  # noqa: E402


def entry(name: str) -> str:
    import flask

    import main

    with flask.Flask("cold").test_request_context("/", method="POST", json={}):
        try:
            if name == "on_request_object":
                from cloudevents.http import CloudEvent

                main.on_request_object(CloudEvent({"type": "google.cloud.storage.object.v1.finalized", "source": "bench",
                                                   "id": "1"}, {}))
                return "200"
            return str(getattr(main, name)(flask.request).status_code)
        except Exception as exc:  # werkzeug raises its 401 for a cloud event, with the answer on it
            answer = getattr(exc, "response", None)
            return str(getattr(answer, "status_code", None) or getattr(exc, "code", None) or type(exc).__name__)


def baseline(clients: set[str]) -> str:
    import flask
    import functions_framework  # noqa: F401

    # The same stand-in request as entry(): the test client's cost (flask.testing, ~10 ms) is the
    # harness's, on both sides, not the entry point's.
    with flask.Flask("cold").test_request_context("/", method="POST", json={}):
        pass
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    if "firestore" in clients:
        from google.cloud import firestore

        firestore.Client(project=project)
    if "tasks" in clients:
        import grpc
        from google.cloud import tasks_v2
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(
            os.environ["CLOUD_TASKS_EMULATOR_HOST"])))
    if "storage" in clients:
        from google.cloud import storage

        storage.Client(project=project).bucket(os.environ["VEO_BUCKET"])
    return "-"


# Entry points that load the request schema (pydantic) at the first request that carries one,
# past the edge: what that first validation adds is measured after the cold start, apart.
SCHEMA_LATER = {"api", "on_request_object"}


def schema_cpu_s() -> float:
    started = time.process_time()
    import veorelay.steps.accept  # noqa: F401  (the request schema, and job creation)

    return time.process_time() - started


def main(argv: list[str]) -> int:
    mode, name, *clients = argv
    status = entry(name) if mode == "entry" else baseline(set(",".join(clients).split(",")))
    result = {"mode": mode, "entry": name, "seconds": time.perf_counter() - _T0, "cpu_s": time.process_time() - _C0,
              "status": status}
    if mode == "entry" and name in SCHEMA_LATER:
        result["schema_cpu_s"] = schema_cpu_s()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
