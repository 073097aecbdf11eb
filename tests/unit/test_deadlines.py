"""Every Firestore, Cloud Tasks and Cloud Storage call has a deadline (gcp/deadlines.py): the
modules that make them pass `timeout=` on each, so a backend that hangs is answered in bounded
time instead of after a library's default (60 s to 300 s)."""
from __future__ import annotations

import ast
from pathlib import Path

from veorelay.gcp import deadlines

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "veorelay"
# The modules that call the Google clients, and what the calls are named.
CALLERS = ["gcp/store.py", "gcp/tasks.py", "gcp/sink.py", "gcp/inputs.py", "gcp/poll_stats.py", "steps/finalize.py",
           "steps/images.py", "edges/request_objects.py"]
CLIENT_METHODS = {"create_task", "upload_from_string", "upload_from_file", "download_as_bytes", "get_blob", "patch", "reload",
                  "rewrite", "get_all", "commit", "exists", "delete", "stream", "open"}
# Firestore document calls, on a document reference (`ref`, or `collection.document(id)`).
DOCUMENT_METHODS = {"get", "create", "update", "set"}


def client_calls(tree: ast.Module) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, receiver = node.func.attr, node.func.value
        on_a_document = (isinstance(receiver, ast.Name) and receiver.id == "ref") or (
            isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute) and receiver.func.attr == "document")
        if name in CLIENT_METHODS or (name in DOCUMENT_METHODS and on_a_document):
            calls.append(node)
    return calls


def test_every_backend_call_has_a_timeout():
    missing, seen = [], 0
    for rel in CALLERS:
        tree = ast.parse((PACKAGE / rel).read_text(encoding="utf-8"))
        for call in client_calls(tree):
            seen += 1
            if not any(k.arg == "timeout" for k in call.keywords):
                missing.append(f"{rel}:{call.lineno} .{call.func.attr}()")  # type: ignore[attr-defined]
    assert seen > 25, "the scan found too few calls: has the code moved?"
    assert not missing, f"backend calls without a deadline (timeout=, see gcp/deadlines.py): {missing}"


def test_the_bounds_answer_a_request_well_within_the_api_functions_timeout():
    api_timeout_s = 60  # infra/main.tf function_catalog.api.timeout
    worst_post = deadlines.FIRESTORE_CALL_S * 2 + deadlines.TASKS_CALL_S  # a replay check, the create, the enqueue
    assert worst_post < api_timeout_s / 2
    assert deadlines.FIRESTORE_RETRY.timeout == deadlines.FIRESTORE_BUDGET_S and deadlines.TASKS_RETRY.timeout == deadlines.TASKS_BUDGET_S
