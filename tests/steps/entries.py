"""The three ways a job arrives, driven over the fakes: a JSON body and a multipart/form-data
body through the public API's own handler (edges/api.handle, with a Flask test request), and a
request object dropped in the bucket (edges/request_objects.on_object_finalized, as Eventarc
calls it). Each answers (status, body) the same way, so a test can ask all three the same
question; `created(rt)` is what a call left behind."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import flask

from veorelay.core.job import Job
from veorelay.edges.api import handle
from veorelay.edges.request_objects import on_object_finalized, result_name
from veorelay.runtime import Runtime

from .fakes import make_runtime
from .helpers import bucket_of, store_of, tasks_of

ENTRIES = ("json", "multipart", "object")
_APP = flask.Flask("veo-relay-step-tests")


def entry_runtime() -> Runtime:
    """A Runtime over the fakes whose API asks no key (the key check has its own tests)."""
    return make_runtime(env={"VEO_AUTH_DISABLED": "true"})


def post_json(rt: Runtime, data: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    """POST /jobs with this body, through edges/api.handle."""
    with _APP.test_request_context("/jobs", method="POST", data=data, content_type=content_type):
        response = handle(flask.request, rt)
    return response.status_code, json.loads(response.get_data())


def multipart_body(parts: Iterable[tuple[str, bytes, str | None]], boundary: str) -> bytes:
    """A multipart/form-data body, byte for byte: (name, data, filename or None for a text part)."""
    out = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: application/json\r\n" if filename else b""
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def post_multipart(rt: Runtime, parts: Iterable[tuple[str, bytes, str | None]]) -> tuple[int, Any]:
    """POST /jobs as multipart/form-data with these parts, through edges/api.handle."""
    boundary = f"veo-{uuid.uuid4().hex}"
    data = multipart_body(parts, boundary)
    with _APP.test_request_context("/jobs", method="POST", data=data, content_type=f"multipart/form-data; boundary={boundary}"):
        response = handle(flask.request, rt)
    return response.status_code, json.loads(response.get_data())


def drop_request_object(rt: Runtime, data: bytes, name: str = "requests/job.json") -> tuple[int, Any]:
    """A request object written to the bucket and its finalized event delivered: (202 and the
    job's view, or the refusal's status and error body), as written to <name>.result.json."""
    bucket = bucket_of(rt)
    bucket.put(name, data, content_type="application/json")
    generation = bucket.objects[name].generation
    event = {"bucket": rt.settings.bucket, "name": name, "generation": str(generation), "size": str(len(data))}
    result = on_object_finalized(rt, f"event-{uuid.uuid4().hex}", event)
    assert result is not None
    assert json.loads(bucket.data(result_name(name))) == result  # what the client reads back
    if result["job"] is not None:
        return 202, result["job"]
    return _status_of(result["error"]), {"error": result["error"]}


def _status_of(error: dict[str, Any]) -> int:
    """The status POST /jobs gives this refusal (a request object has none of its own)."""
    return {"payload_too_large": 413, "conflict": 409}.get(error["code"], 400)


def send(rt: Runtime, entry: str, body: bytes) -> tuple[int, Any]:
    """The job's JSON `body` sent one of the three ways (ENTRIES)."""
    if entry == "json":
        return post_json(rt, body)
    if entry == "multipart":
        return post_multipart(rt, [("request", body, None)])
    assert entry == "object", entry
    return drop_request_object(rt, body)


def created(rt: Runtime, entry: str) -> tuple[list[str], list[str], list[str]]:
    """What the call left: job ids, task names, and objects other than the request object and
    its result."""
    objects = [n for n in bucket_of(rt).names() if not (entry == "object" and n.startswith("requests/"))]
    return store_of(rt).ids(), tasks_of(rt).names(), objects


def the_job(rt: Runtime) -> Job:
    (job_id,) = store_of(rt).ids()
    return store_of(rt).job(job_id)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same JSON types throughout (True is not 1, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
