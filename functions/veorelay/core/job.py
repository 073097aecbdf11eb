"""The job state machine: statuses and the transitions between them. Pure, no I/O."""
from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

_FORWARD: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.ACCEPTED: frozenset({JobStatus.RUNNING}),
    JobStatus.RUNNING: frozenset({JobStatus.DOWNLOADING}),
    JobStatus.DOWNLOADING: frozenset({JobStatus.SUCCEEDED}),
}


def allowed(current: JobStatus | str, target: JobStatus | str) -> bool:
    """Whether a job may move from `current` to `target`.

    Forward along accepted → running → downloading → succeeded; to failed or cancelled from
    any non-terminal state; never out of a terminal state.
    """
    current, target = JobStatus(current), JobStatus(target)
    if current.terminal:
        return False
    if target in (JobStatus.FAILED, JobStatus.CANCELLED):
        return True
    return target in _FORWARD[current]


class TransitionRefused(Exception):
    """The job is not in a state the step moves from: a duplicate or late task. Not an error."""

    def __init__(self, job_id: str, current: str, target: str):
        super().__init__(f"job {job_id} is {current}; not moving it to {target}")
        self.job_id, self.current, self.target = job_id, current, target
