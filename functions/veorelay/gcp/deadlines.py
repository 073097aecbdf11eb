"""How long each call to Firestore, Cloud Tasks and Cloud Storage may take, and which failures
are tried again within that time: with a backend down or hanging, every request and step is
answered (503, or a retry of the task) in bounded time instead of waiting on a library default.

A call gets a per-attempt `timeout=` and a `retry=` whose total budget bounds its retries. Only
failures that are quick to show and safe to repeat are retried here (UNAVAILABLE, INTERNAL, 429);
a call that timed out is not tried again in the same request: the caller answers at once and the
client (or the queue) comes back.

Bounds, with Firestore paused (every call hangs): a Firestore call gives up after
FIRESTORE_CALL_S; with Firestore refusing connections, after FIRESTORE_BUDGET_S at most. POST /jobs
and GET /jobs/{id} make one Firestore call each before they answer 503.
"""
from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as api_retry

FIRESTORE_CALL_S = 5.0  # one Firestore RPC (a read, a write, a batch commit)
FIRESTORE_BUDGET_S = 10.0  # all attempts of one call, when it fails quickly (UNAVAILABLE, ...)
FIRESTORE_QUERY_S = 30.0  # a sweep query streams up to 200 documents
TASKS_CALL_S = 5.0  # one CreateTask
TASKS_BUDGET_S = 10.0
GCS_CALL_S = 30.0  # one Cloud Storage request (a small object, a metadata call, a delete)
GCS_BUDGET_S = 60.0
GCS_CHUNK_S = 120.0  # one chunk of a resumable upload (8 MiB by default), or a rewrite step

_QUICK_FAILURES = (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests)


def _retry(budget_s: float) -> api_retry.Retry:
    return api_retry.Retry(predicate=api_retry.if_exception_type(*_QUICK_FAILURES), initial=0.1, maximum=1.0,
                           multiplier=2.0, timeout=budget_s)


FIRESTORE_RETRY = _retry(FIRESTORE_BUDGET_S)
TASKS_RETRY = _retry(TASKS_BUDGET_S)
# Cloud Storage's own policy (its retryable errors, conditional on preconditions where it
# matters), with a shorter budget than its default two minutes. Built on first use (module
# __getattr__ below): importing this module does not import Cloud Storage's library, which only
# the functions that use Storage load (cold starts, veorelay/runtime.py).
GCS_RETRY: api_retry.Retry


def __getattr__(name: str) -> Any:
    if name == "GCS_RETRY":
        from google.cloud.storage import retry as storage_retry

        policy = storage_retry.DEFAULT_RETRY.with_timeout(GCS_BUDGET_S)
        globals()["GCS_RETRY"] = policy
        return policy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
