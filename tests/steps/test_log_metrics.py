"""The log-based metrics of infra/monitoring.tf read fields the code really logs.

Each metric's filter (`jsonPayload.<field>=<value>` clauses) and every field its label and value
extractors read are checked against the JSON lines the real steps print (gcp/logs.py) while jobs
run over the in-memory fakes: a job that succeeds with a webhook, one the provider fails, one whose
submission is throttled, two that asked their provider to push (one found done by its event, one
by a check), a completion event refused, and a client at its budget cap. A filter no real line matches, or a label read from a field the matching
lines lack, is a metric that would stay empty in Cloud Monitoring (and an alert that never fires)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import hcl2
import pytest
from hcl2 import SerializationOptions

from veorelay.core.budget import BudgetExceeded
from veorelay.core.push_events import ProviderEvent
from veorelay.edges import provider_events
from veorelay.gcp import logs
from veorelay.steps import events_in
from veorelay.steps.accept import create_job

from .driver import drain, run_named
from .fake_providers import FakeProvider, failed, mp4, succeeded, throttled
from .fakes import make_runtime
from .helpers import PROMPT, WEBHOOK_URL, accepted_job, downloading_job, provider_of, running_job

MONITORING_TF = Path(__file__).resolve().parents[2] / "infra" / "monitoring.tf"
CLAUSE = re.compile(r'^jsonPayload\.(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>!=|>=|<=|=|>|<|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|[-\d.]+|\*)$')
EXTRACT = re.compile(r"^EXTRACT\(jsonPayload\.(?P<field>[A-Za-z_][\w.]*)\)$")


@dataclass(frozen=True)
class Metric:
    name: str
    filter: str
    labels: dict[str, str]  # label -> jsonPayload.<field>
    value: str | None  # jsonPayload.<field> of a distribution


def load_metrics(path: Path = MONITORING_TF) -> list[Metric]:
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    with open(path, encoding="utf-8") as fh:
        doc = hcl2.load(fh, serialization_options=options)
    found = [block["log_metrics"] for block in doc.get("locals", []) if "log_metrics" in block]
    assert found, f"{path.name} defines no local.log_metrics"
    return [Metric(name, spec["filter"], dict(spec.get("labels") or {}), spec.get("value")) for name, spec in found[0].items()]


def field_of(line: dict[str, Any], dotted: str) -> Any:
    value: Any = line
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def matches(filter_text: str, line: dict[str, Any]) -> bool:
    """The subset of the Logging query language the metrics use: clauses on jsonPayload fields joined by AND."""
    for clause in (part.strip() for part in filter_text.split(" AND ")):
        parsed = CLAUSE.match(clause)
        if parsed is None:
            raise AssertionError(f"filter clause {clause!r} is outside what this test understands: teach it, or simplify the filter")
        actual = field_of(line, parsed["field"])
        op, raw = parsed["op"], parsed["value"]
        if op == ":" and raw == "*":
            ok = actual is not _MISSING
        elif raw.startswith('"'):
            expected = json.loads(raw)
            ok = (actual == expected) if op in ("=", ":") else (actual != expected) if op == "!=" else False
        else:
            number = float(raw)
            ok = isinstance(actual, (int, float)) and {
                "=": actual == number, "!=": actual != number, ">=": actual >= number, "<=": actual <= number,
                ">": actual > number, "<": actual < number}[op]
        if not ok:
            return False
    return True


def problems(metrics: list[Metric], lines: list[dict[str, Any]]) -> list[str]:
    found = []
    for metric in metrics:
        hits = [line for line in lines if matches(metric.filter, line)]
        if not hits:
            found.append(f"{metric.name}: no line the code logged matches {metric.filter!r}")
            continue
        for label, extractor in metric.labels.items():
            parsed = EXTRACT.match(f"EXTRACT({extractor})")
            assert parsed, extractor
            if all(field_of(line, parsed["field"]) is _MISSING for line in hits):
                found.append(f"{metric.name}: label {label} reads {extractor}, which no matching line carries")
        if metric.value is not None:
            field = metric.value.removeprefix("jsonPayload.")
            if not any(isinstance(field_of(line, field), (int, float)) for line in hits):
                found.append(f"{metric.name}: value {metric.value} is not a number on any matching line")
    return found


@pytest.fixture
def logged(rt, capsys) -> list[dict[str, Any]]:
    """The JSON lines printed while three jobs run through the real steps."""
    logs.configure()
    capsys.readouterr()
    provider = provider_of(rt)

    job_id = downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL)  # succeeds, with a webhook
    run_named(rt, f"{job_id}-finalize")
    drain(rt)

    job_id = running_job(rt)  # the provider fails it
    provider.checks.set(failed())
    run_named(rt, f"{job_id}-poll-1")

    job_id = accepted_job(rt)  # the provider throttles its submission
    provider.submits.set(throttled())
    run_named(rt, f"{job_id}-submit")

    # jobs that asked their provider to push: one found done by its event, one by a backstop check
    gemini = FakeProvider("gemini")
    gemini.submits.set(lambda job_id, req: {"operation": f"models/veo/operations/{job_id}", "model": "veo", "push": "request"})
    pushing = make_runtime(providers=[gemini])
    by_event, by_check = accepted_job(pushing, provider="gemini"), accepted_job(pushing, provider="gemini")
    run_named(pushing, f"{by_event}-submit")
    run_named(pushing, f"{by_check}-submit")
    gemini.checks.set(succeeded("https://videos.fake/pushed.mp4"))
    events_in.receive(pushing, ProviderEvent(source="gemini-request", event_id="msg_1", completion=True, job_id=by_event), now=0.0)
    run_named(pushing, f"{by_event}-push-0")
    run_named(pushing, f"{by_check}-poll-1")

    # a completion event that does not verify (the public provider_events function answers 401)
    with flask.Flask("provider_events").test_request_context("/", method="POST", data=b"{}", headers={"webhook-signature": "v1,x"}):
        assert provider_events.handle(flask.request, rt).status_code == 401

    # a client with tight caps: one job reserved (to 100% of its in-flight cap), the next refused
    capped = make_runtime({"VEO_BUDGETS": '{"default": {"max_in_flight": 1}}'})
    create_job(capped, {"prompt": PROMPT, "provider": "fake"}, client_id="acme")
    with pytest.raises(BudgetExceeded):
        create_job(capped, {"prompt": PROMPT, "provider": "fake"}, client_id="acme")

    out = capsys.readouterr().out
    return [json.loads(text) for text in out.splitlines() if text.startswith("{")]


def test_every_metric_reads_lines_and_fields_the_code_logs(logged):
    metrics = load_metrics()
    assert {m.name for m in metrics} >= {"jobs_ended", "detection_delay", "copy_time", "webhook_attempts", "submissions_throttled",
                                         "budget_refusals", "budget_near_cap", "push_detections", "provider_events_refused"}
    assert problems(metrics, logged) == []


def test_a_pushing_jobs_detection_says_what_found_it_done_and_a_polled_ones_does_not(logged):
    detected = [line for line in logged if line.get("message") == "provider done detected"]
    assert sorted(line.get("detected_by", "-") for line in detected if line["provider"] == "gemini") == ["check", "event"]
    assert {line.get("detected_by", "-") for line in detected if line["provider"] == "fake"} == {"-"}
    [refused] = [line for line in logged if line.get("message") == "provider event refused"]
    assert refused["scheme"] == "gemini-static" and refused["severity"] == "WARNING"


def test_the_job_ended_line_carries_what_the_alerts_group_by(logged):
    ended = [line for line in logged if line.get("message") == "job ended"]
    assert {line["status"] for line in ended} == {"succeeded", "failed"}
    failed_line = next(line for line in ended if line["status"] == "failed")
    assert failed_line["error_code"] == "provider_error" and failed_line["provider"] == "fake" and failed_line["job_id"]
    assert next(line for line in ended if line["status"] == "succeeded")["error_code"] == "none"


def test_a_metric_on_a_field_nobody_logs_is_reported(logged):
    planted = [
        Metric("misspelt_message", 'jsonPayload.message="job finished"', {}, None),
        Metric("missing_label", 'jsonPayload.message="job ended"', {"region": "jsonPayload.region"}, None),
        Metric("text_value", 'jsonPayload.message="job ended"', {}, "jsonPayload.status"),
    ]
    assert problems(planted, logged) == [
        "misspelt_message: no line the code logged matches 'jsonPayload.message=\"job finished\"'",
        "missing_label: label region reads jsonPayload.region, which no matching line carries",
        "text_value: value jsonPayload.status is not a number on any matching line",
    ]


@pytest.mark.parametrize(("clause", "line", "expected"), [
    ('jsonPayload.status="failed"', {"status": "failed"}, True),
    ('jsonPayload.status!="failed"', {"status": "failed"}, False),
    ("jsonPayload.used_fraction>=0.9", {"used_fraction": 0.95}, True),
    ("jsonPayload.used_fraction>=0.9", {"used_fraction": 0.5}, False),
    ("jsonPayload.copy_s:*", {"copy_s": 1.0}, True),
    ("jsonPayload.copy_s:*", {}, False),
])
def test_the_filter_subset_is_evaluated_as_logging_does(clause, line, expected):
    assert matches(clause, line) is expected
