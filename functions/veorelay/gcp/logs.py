"""Structured logs: one JSON line an event, the shape Cloud Logging reads.

Every line carries severity, message, and (when known) the job id and the trace, so one
job's story can be read across functions. Callers pass fields explicitly; nothing here
looks inside them, so never pass a secret or image bytes.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from veorelay.core.redaction import redact_text

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)

_logger = logging.getLogger("veorelay")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        job_id = getattr(record, "job_id", None) or _job_id.get()
        if job_id:
            entry["job_id"] = job_id
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # The last line of defence: a secret quoted in a field or a traceback never leaves.
        return redact_text(json.dumps(entry, default=str))


class _StdoutHandler(logging.StreamHandler):
    """Writes to sys.stdout as it is when a line is logged, not as it was at configure()
    (pytest swaps sys.stdout per test; functions-framework never does)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(level: str = "INFO") -> None:
    if any(isinstance(h.formatter, _JsonFormatter) for h in _logger.handlers):
        _logger.setLevel(level)
        return
    handler = _StdoutHandler()
    handler.setFormatter(_JsonFormatter())
    _logger.addHandler(handler)
    _logger.setLevel(level)
    _logger.propagate = False


def event(severity: str, message: str, exc_info: bool = False, **fields: Any) -> None:
    _logger.log(logging.getLevelName(severity), message, exc_info=exc_info, extra={"fields": fields})


def info(message: str, **fields: Any) -> None:
    event("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    event("WARNING", message, **fields)


def error(message: str, exc_info: bool = False, **fields: Any) -> None:
    event("ERROR", message, exc_info=exc_info, **fields)


@contextmanager
def context(job_id: str | None = None, trace_header: str | None = None, project: str | None = None) -> Iterator[None]:
    """Attach a job id and the request's trace to every line logged inside."""
    tokens = []
    if job_id:
        tokens.append((_job_id, _job_id.set(job_id)))
    trace = trace_from_header(trace_header, project)
    if trace:
        tokens.append((_trace, _trace.set(trace)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_job(job_id: str) -> None:
    """Name the job for the rest of the current context (an HTTP request or task)."""
    _job_id.set(job_id)


def current_trace_header() -> str | None:
    """The trace of the current request as an X-Cloud-Trace-Context value, so the tasks a
    step enqueues continue the same trace: one job reads as one trace across functions."""
    trace = _trace.get()
    return f"{trace.rsplit('/', 1)[-1]}/1;o=1" if trace else None


def trace_from_header(header: str | None, project: str | None) -> str | None:
    """`X-Cloud-Trace-Context: TRACE/SPAN;o=1` or W3C `traceparent: 00-TRACE-SPAN-01`."""
    if not header or not project:
        return None
    if header.count("-") == 3 and "/" not in header:
        trace_id = header.split("-")[1]
    else:
        trace_id = header.split("/")[0]
    return f"projects/{project}/traces/{trace_id}" if trace_id else None
