"""Counters inside each function process of the bench's stack.

What is billed is counted where it happens, in the client libraries: Firestore document
reads (each document a BatchGetDocuments or RunQuery returns, found or missing) and writes
(each Write of a Commit: a transform such as Increment rides in its document's write), GCS
requests by class (GET: class B; POST/PUT/PATCH: class A), and the function invocations
with their wall time. Each process rewrites <VEO_BENCH_COUNTS_DIR>/<target>-<pid>.json after
every invocation; the bench sums the files before and after a run.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

_lock = threading.Lock()
COUNTS: dict[str, float] = {"invocations": 0, "busy_s": 0.0, "firestore_reads": 0, "firestore_writes": 0,
                            "gcs_class_a": 0, "gcs_class_b": 0}


def add(key: str, n: float = 1) -> None:
    with _lock:
        COUNTS[key] = COUNTS.get(key, 0) + n


def install() -> None:
    _count_firestore()
    _count_storage()


def _collection(write: Any) -> str:
    """The top collection a commit's write goes to (its document path after `documents/`)."""
    get = write.get if isinstance(write, dict) else lambda key: getattr(write, key, None)
    update, delete, transform = get("update"), get("delete"), get("transform")
    name = (update.get("name") if isinstance(update, dict) else getattr(update, "name", "")) or delete or (
        transform.get("document") if isinstance(transform, dict) else getattr(transform, "document", "")) or ""
    return name.split("/documents/", 1)[-1].split("/", 1)[0] or "?"


def _count_firestore() -> None:
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

    batch_get, commit, run_query = FirestoreClient.batch_get_documents, FirestoreClient.commit, FirestoreClient.run_query

    def counted_batch_get(self, *args, **kwargs):
        for response in batch_get(self, *args, **kwargs):
            if response.found or response.missing:
                add("firestore_reads")
            yield response

    def counted_run_query(self, *args, **kwargs):
        seen = 0
        for response in run_query(self, *args, **kwargs):
            if response.document:
                seen += 1
                add("firestore_reads")
            yield response
        if not seen:
            add("firestore_reads")  # a query that finds nothing is billed one read

    def counted_commit(self, request=None, *args, **kwargs):
        writes = request.get("writes") if isinstance(request, dict) else getattr(request, "writes", None)
        add("firestore_writes", len(writes or ()))
        for write in writes or ():
            add(f"firestore_writes {_collection(write)}")
        return commit(self, request, *args, **kwargs)

    FirestoreClient.batch_get_documents = counted_batch_get
    FirestoreClient.run_query = counted_run_query
    FirestoreClient.commit = counted_commit


def _count_storage() -> None:
    from google.auth.transport.requests import AuthorizedSession

    storage_host = (os.environ.get("STORAGE_EMULATOR_HOST") or "storage.googleapis.com").rstrip("/")
    authorized_request = AuthorizedSession.request

    def counted_request(self, method, url, *args, **kwargs):
        if str(url).startswith(storage_host) or "storage.googleapis.com" in str(url):
            if method.upper() == "GET":
                add("gcs_class_b")
            elif method.upper() != "DELETE":
                add("gcs_class_a")
        return authorized_request(self, method, url, *args, **kwargs)

    AuthorizedSession.request = counted_request


def counted(target: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            add("invocations")
            add("busy_s", time.perf_counter() - started)
            dump(target)
    return wrapper


def dump(target: str) -> None:
    folder = os.environ.get("VEO_BENCH_COUNTS_DIR")
    if not folder:
        return
    path = Path(folder) / f"{target}-{os.getpid()}.json"
    with _lock:
        data = dict(COUNTS, cpu_s=sum(os.times()[:2]))
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
