"""Schemathesis (requirements-dev.txt) against the running local stack, over every operation of
GET /openapi.json, with an API key: no 5xx, and every answer's status code, content type, headers
and body as documented. The generated cases are counted and printed (README "Tests")."""
from __future__ import annotations

import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .helpers import Client, unique_prompt

pytestmark = [pytest.mark.integration, pytest.mark.contract]

# Cases per operation: 19 operations, about 350 requests in all, about 30 s on 2 cores.
MAX_EXAMPLES = 20
REAL_JOB_EXAMPLES = 5  # cases of each route of one job on a job that exists (the delete last)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Operations whose answer is a long-lived stream: the events of a job that exists would be held open
# until it ends; generated ids name no job, so these answer at once (404) and are checked like the rest.
TIMEOUT_S = 30


def test_every_operation_keeps_its_documented_contract(stack, capsys):
    base = stack.function_urls["api"].rstrip("/")
    # The document as the stack serves it (from_dict: from_url would leave out the operation that
    # serves the document itself).
    schema = schemathesis.openapi.from_dict(requests.get(f"{base}/openapi.json", timeout=10).json())
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    counts: dict[str, int] = {}
    statuses: Counter = Counter()
    failures: list[str] = []
    started = time.monotonic()
    # A job that exists, finished while the generated cases run: the routes of one job are then
    # also run on it (generated ids name no job, so alone they would only ever meet the 404).
    client = Client(stack)
    real = client.submit({"prompt": unique_prompt("a contract test")}).json()["id"]
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        counts[operation.label] = 0
        try:
            contract_test(operation, base, auth, counts, statuses)()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup; every operation is run
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert client.wait(real)["status"] == "succeeded"
    of_one_job = [op for op in operations if "{id}" in op.path or "{video_id}" in op.path]
    for operation in sorted(of_one_job, key=lambda op: op.method.upper() == "DELETE"):  # the delete last
        name = "id" if "{id}" in operation.path else "video_id"
        label = f"{operation.label} (a real job)"
        counts[label] = 0
        try:
            contract_test(operation, base, auth, counts, statuses, path_parameters={name: real}, label=label,
                          examples=REAL_JOB_EXAMPLES)()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nschemathesis: {total} generated cases over {len(counts)} operations in {elapsed:.1f}s")
        print("  answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    assert not failures, "\n\n".join(failures)
    assert len(operations) == sum(len(methods) for methods in schema.raw_schema["paths"].values())
    assert all(counts.values()), f"operations with no case: {[k for k, v in counts.items() if not v]}"
    # Not only refusals: generated jobs and videos were accepted, and the listings answered.
    for accepted in ("POST /jobs 202", "POST /v1/videos 200", "GET /jobs 200", "GET /v1/videos 200", "GET /openapi.json 200",
                     "GET /jobs/{id} (a real job) 200", "GET /jobs/{id}/events (a real job) 200",
                     "GET /v1/videos/{video_id}/content (a real job) 200", "DELETE /v1/videos/{video_id} (a real job) 200"):
        assert statuses[accepted], f"no {accepted} among {dict(statuses)}"


def contract_test(operation, base: str, auth: dict[str, str], counts: dict[str, int], statuses: Counter | None = None,
                  path_parameters: dict[str, str] | None = None, label: str | None = None, examples: int = MAX_EXAMPLES):
    """The hypothesis test of one operation: `examples` generated cases, each sent and checked."""
    statuses = statuses if statuses is not None else Counter()
    label = label or operation.label

    # The key as a fixed header: generated Authorization values would only ever meet the 401.
    @given(case=operation.as_strategy(headers=auth, path_parameters=path_parameters))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        counts[label] += 1
        response = case.call_and_validate(base_url=base, checks=CHECKS, timeout=TIMEOUT_S)
        statuses[f"{label} {response.status_code}"] += 1

    return run


def test_the_run_finds_an_answer_the_document_does_not_promise(stack):
    """A control: with the 400 of POST /v1/videos/{video_id}/remix taken out of the document, the
    same checks fail on the answers the stack gives."""
    base = stack.function_urls["api"].rstrip("/")
    raw = requests.get(f"{base}/openapi.json", timeout=10).json()
    del raw["paths"]["/v1/videos/{video_id}/remix"]["post"]["responses"]["400"]
    operation = schemathesis.openapi.from_dict(raw)["/v1/videos/{video_id}/remix"]["POST"]
    counts = {operation.label: 0}
    with pytest.raises(BaseExceptionGroup) as found:  # schemathesis's FailureGroup
        contract_test(operation, base, {"Authorization": f"Bearer {stack.api_key}"}, counts)()
    assert [type(e).__name__ for e in found.value.exceptions] == ["UndefinedStatusCode"]
    assert "Received: 400" in str(found.value.exceptions[0])
    assert counts[operation.label] >= 1
