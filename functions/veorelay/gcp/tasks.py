"""Cloud Tasks: named, delayed HTTP tasks to the internal functions.

Task names make enqueueing idempotent: a step that runs twice enqueues the same name twice,
and Cloud Tasks keeps only one.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2
from google.protobuf import duration_pb2, timestamp_pb2

from veorelay.config import Settings
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.gcp import logs
from veorelay.gcp.deadlines import TASKS_CALL_S, TASKS_RETRY

_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


@dataclass(frozen=True)
class TaskRequest:
    queue: str
    target: str  # the internal function's name, e.g. "poll_job"
    name: str
    payload: dict[str, Any]
    delay_s: float = 0.0
    dispatch_deadline_s: int | None = None


class TaskScheduler:
    def __init__(self, client: tasks_v2.CloudTasksClient, settings: Settings):
        self._client = client
        self._settings = settings

    def enqueue(self, req: TaskRequest) -> bool:
        """Create the task; False when a task of that name exists or ran recently."""
        if not _NAME_OK.match(req.name):
            raise ValueError(f"invalid task name {req.name!r}")
        parent = self._client.queue_path(self._settings.project, self._settings.location, req.queue)
        url = self._settings.task_url(req.target)
        headers = {"Content-Type": "application/json"}
        trace = logs.current_trace_header()
        if trace:
            headers["X-Cloud-Trace-Context"] = trace
        http_request: dict[str, Any] = {
            "http_method": tasks_v2.HttpMethod.POST,
            "url": url,
            "headers": headers,
            "body": json.dumps(req.payload).encode(),
        }
        if self._settings.tasks_service_account:
            http_request["oidc_token"] = {
                "service_account_email": self._settings.tasks_service_account,
                "audience": url,
            }
        task: dict[str, Any] = {"name": f"{parent}/tasks/{req.name}", "http_request": http_request}
        if req.delay_s > 0:
            ts = timestamp_pb2.Timestamp()
            ts.FromDatetime(datetime.now(UTC) + timedelta(seconds=req.delay_s))
            task["schedule_time"] = ts
        if req.dispatch_deadline_s:
            task["dispatch_deadline"] = duration_pb2.Duration(seconds=req.dispatch_deadline_s)
        try:
            # A retried create of a task that was created is AlreadyExists: the same as done.
            self._client.create_task(parent=parent, task=tasks_v2.Task(task), timeout=TASKS_CALL_S, retry=TASKS_RETRY)
            return True
        except gexc.AlreadyExists:
            return False
        except (gexc.InvalidArgument, gexc.NotFound):
            raise  # a task or queue the deployment cannot have: no retry will help
        except gexc.GoogleAPIError as exc:  # down, too slow (a deadline, retries used up), throttling
            raise TransientError(ErrorCode.UNAVAILABLE, f"could not enqueue {req.target}: {type(exc).__name__}") from exc
