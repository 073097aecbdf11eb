"""Provider completion events, as the provider_events function reads them once their signature
checked out (gcp/push_auth.py): which job or operation an event names, and nothing else.

An event is only ever a hint that a job may be done: the result is always asked of the provider
(steps/events_in.py queues an immediate check), so nothing an event says beyond "look at this
job now" is used. Shapes (docs/PROVIDERS.md "Completion events (push)"):

* Gemini API webhooks, static and per-request: `{"type": "video.generated", "data": {...}}`;
  the operation is the first of data.name / data.operation / data.operation_name / data.id that
  is an operation name, and a per-request webhook echoes its `user_metadata` (our job id).
* Vertex AI through Pub/Sub push: `{"message": {"data": <base64 JSON>, "attributes": {...},
  "messageId": ...}, "subscription": ...}`, the data being the operation (`name`, `done`).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from veorelay.core.job import JOB_ID, Job

# How a job's provider was asked to tell us that it ended (its handle's "push": the Gemini API's
# static or per-request webhook, or Vertex's Pub/Sub topic). Not config.PUSH_MODES, which is
# what a deployment may ask the Gemini API for.
HANDLE_PUSH_MODES = ("static", "request", "pubsub")


def push_mode(handle: object) -> str | None:
    """A handle's push mode (HANDLE_PUSH_MODES); None: the provider was not asked to push."""
    mode = handle.get("push") if isinstance(handle, dict) else None
    return mode if mode in HANDLE_PUSH_MODES else None


def expects_push(job: Job) -> bool:
    """Whether the provider was asked to tell us when this job ends (its handle says how)."""
    return push_mode(job.get("handle")) is not None


# What found a pushing job's provider done (the job's `detected_by`): its event's check, or a
# check of its chain first, whose event may still come (steps/events_in.py counts it then).
DETECTED_BY_EVENT, DETECTED_BY_CHECK = "event", "check"


def request_webhook_url(events_url: str, job_id: str) -> str:
    """The per-request webhook URI of one job: the provider_events URL naming the job (the
    webhook's JWT is for exactly this URL, so it cannot be replayed for another job)."""
    return f"{events_url.rstrip('/')}?job={job_id}"


GEMINI_SOURCES = frozenset({"gemini-static", "gemini-request"})
PUBSUB_SOURCE = "vertex-pubsub"
# Which providers' jobs an event of each source may name.
SOURCE_PROVIDERS: Mapping[str, frozenset[str]] = {
    "gemini-static": frozenset({"gemini", "litellm-gemini"}),
    "gemini-request": frozenset({"gemini", "litellm-gemini"}),
    PUBSUB_SOURCE: frozenset({"vertex"}),
}
COMPLETION_TYPES = frozenset({"video.generated"})
_OPERATION = re.compile(r"^[A-Za-z0-9._:/-]{1,400}/operations/[A-Za-z0-9._-]{1,200}$")
MAX_EVENT_ID_CHARS = 200


@dataclass(frozen=True)
class ProviderEvent:
    source: str  # gemini-static | gemini-request | vertex-pubsub
    event_id: str  # webhook-id, or the Pub/Sub messageId (for logs: duplicates collapse in the task name)
    completion: bool  # False: an event that says nothing has ended (another type, progress)
    job_id: str | None = None
    operation: str | None = None


def operation_name(value: Any) -> str | None:
    return value if isinstance(value, str) and _OPERATION.match(value) else None


def job_id_of(value: Any) -> str | None:
    return value if isinstance(value, str) and JOB_ID.match(value) else None


def gemini_event(doc: Any, source: str, event_id: str, url_job_id: str | None = None) -> ProviderEvent:
    """A Gemini API webhook body; `url_job_id` is the job named by the URL a per-request webhook
    was registered with (which its JWT's audience binds)."""
    doc = doc if isinstance(doc, dict) else {}
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    operation = next((op for key in ("name", "operation", "operation_name", "operationName", "id")
                      if (op := operation_name(data.get(key)))), None)
    metadata = data.get("user_metadata") or data.get("userMetadata") or doc.get("user_metadata") or doc.get("userMetadata")
    meta_job = job_id_of(metadata.get("job_id")) if isinstance(metadata, dict) else None
    job_id = url_job_id or (meta_job if source == "gemini-request" else None)
    return ProviderEvent(source=source, event_id=event_id[:MAX_EVENT_ID_CHARS], completion=doc.get("type") in COMPLETION_TYPES,
                         job_id=job_id, operation=operation)


def pubsub_event(envelope: Any) -> ProviderEvent:
    """A Pub/Sub push request body (the wrapped form); a message that is no operation names nothing."""
    found = envelope.get("message") if isinstance(envelope, dict) else None
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    attrs = message.get("attributes")
    attributes: dict[str, Any] = attrs if isinstance(attrs, dict) else {}
    doc: Any = None
    if isinstance(message.get("data"), str):
        try:
            doc = json.loads(base64.b64decode(message["data"], validate=True))
        except (binascii.Error, ValueError):
            doc = None
    doc = doc if isinstance(doc, dict) else {}
    operation = (operation_name(doc.get("name")) or operation_name(doc.get("operationName"))
                 or operation_name(attributes.get("operationName")) or operation_name(attributes.get("operation")))
    done = doc.get("done", attributes.get("done"))
    completion = done is None or done is True or str(done).lower() == "true"
    event_id = str(message.get("messageId") or message.get("message_id") or "")
    return ProviderEvent(source=PUBSUB_SOURCE, event_id=event_id[:MAX_EVENT_ID_CHARS], completion=completion,
                         operation=operation)
