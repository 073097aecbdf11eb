"""Cloud Tasks played in-process: a queued task goes to its step as functions/main.py sends it,
and a step that raises is delivered again (attempt + 1), as the queue does on a 5xx."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from veorelay.runtime import Runtime
from veorelay.steps import chain
from veorelay.steps.deliver import deliver_webhook
from veorelay.steps.finalize import finalize_job
from veorelay.steps.poll import poll_job
from veorelay.steps.stream import stream_job
from veorelay.steps.submit import submit_job

from .fakes import FakeScheduler, QueuedTask

STEPS: dict[str, Callable[[Runtime, QueuedTask], None]] = {
    "submit_job": lambda rt, t: submit_job(rt, t.job_id),
    "poll_job": lambda rt, t: poll_job(rt, t.job_id, chain.decode_poll(t.payload)),
    "stream_job": lambda rt, t: stream_job(rt, t.job_id),
    "finalize_job": lambda rt, t: finalize_job(rt, t.job_id, t.attempt),
    "deliver_webhook": lambda rt, t: deliver_webhook(rt, t.job_id, chain.decode_webhook(t.payload)),
}


@dataclass(frozen=True)
class Delivery:
    name: str
    attempt: int
    error: BaseException | None  # what the step raised (the queue then retries)


def scheduler(rt: Runtime) -> FakeScheduler:
    return cast(FakeScheduler, rt.scheduler)


def run(rt: Runtime, task: QueuedTask) -> None:
    """Deliver one task to its step (what it raises is raised)."""
    STEPS[task.target](rt, task)


def run_named(rt: Runtime, name: str) -> None:
    run(rt, scheduler(rt).take(name))


def drain(rt: Runtime, max_attempts: int = 3, limit: int = 100, skip: Callable[[QueuedTask], bool] | None = None) -> list[Delivery]:
    """Run pending tasks in the order they fall due until none is left. A step that raises is
    retried up to `max_attempts` deliveries, then dropped (a queue giving up). `skip`: tasks
    taken off the queue without running (e.g. webhooks, to look at the job chain alone)."""
    tasks = scheduler(rt)
    log: list[Delivery] = []
    while len(log) < limit:
        task = tasks.take_next()
        if task is None:
            return log
        if skip is not None and skip(task):
            continue
        try:
            run(rt, task)
        except Exception as exc:
            log.append(Delivery(task.name, task.attempt, exc))
            if task.attempt < max_attempts:
                task.attempt += 1
                tasks.pending.append(task)
            continue
        log.append(Delivery(task.name, task.attempt, None))
    raise AssertionError(f"still tasks after {limit} deliveries: {tasks.pending_names()}")


def errors(log: list[Delivery]) -> list[Any]:
    return [d.error for d in log if d.error is not None]
