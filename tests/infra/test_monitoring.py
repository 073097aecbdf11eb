"""infra/monitoring.tf: every alert tells whom (var.notification_channels) and what to do (its
documentation, a runbook section in docs/OPERATIONS.md); the dashboard and the alerts chart only
metrics that exist (veo-relay's log-based metrics, or Google's own Cloud Tasks metrics).
That the log-based metrics read real log lines is tests/steps/test_log_metrics.py."""
from __future__ import annotations

import json
import re

from infra_helpers import INFRA, REPO, load_hcl

MONITORING = INFRA / "monitoring.tf"
DASHBOARD = INFRA / "dashboards" / "veo-relay.json.tftpl"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
GOOGLE_METRICS = {"cloudtasks.googleapis.com/queue/depth", "cloudtasks.googleapis.com/queue/task_attempt_delays"}


def resources(kind: str) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for block in load_hcl(MONITORING).get("resource", []):
        found.update(block.get(kind, {}))
    return found


def local(name: str) -> dict[str, dict]:
    (value,) = [block[name] for block in load_hcl(MONITORING)["locals"] if name in block]
    return value


def log_metric_names() -> set[str]:
    return set(local("log_metrics"))


def alerts() -> dict[str, dict]:
    """local.alerts, after checking that its one policy resource makes every entry a policy that
    pages var.notification_channels with the entry's runbook as its documentation."""
    (policy,) = resources("google_monitoring_alert_policy").values()
    assert policy["for_each"] == "${local.alerts}"
    assert policy["notification_channels"] == "${var.notification_channels}"
    (doc,) = policy["documentation"]
    assert doc == {"mime_type": "text/markdown", "content": "${each.value.runbook}"}
    (conditions,) = policy["dynamic"]
    assert conditions["conditions"]["for_each"] == "${each.value.conditions}"
    return local("alerts")


def metric_types(text: str) -> set[str]:
    return set(re.findall(r'metric\.type=\\?"([^"\\]+)\\?"', text))


def anchors(markdown: str) -> set[str]:
    return {re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M)}


def test_every_alert_notifies_the_channels_and_links_its_runbook():
    policies = alerts()
    assert set(policies) >= {"job_failure_rate", "provider_error_rate", "jobs_past_deadline", "webhooks_failing", "queue_backlog"}
    sections = anchors(OPERATIONS.read_text())
    for name, alert in policies.items():
        assert alert["conditions"], f"{name} has no condition"
        assert len(alert["runbook"]) > 80, name
        links = re.findall(r"docs/OPERATIONS\.md#([a-z0-9-]+)", alert["runbook"])
        assert links, f"{name}: its documentation names no runbook section"
        assert set(links) <= sections, f"{name}: runbook section {set(links) - sections} is not in docs/OPERATIONS.md"


def test_alerts_and_dashboard_chart_only_metrics_that_exist():
    defined = log_metric_names()
    for name, alert in alerts().items():
        text = json.dumps(alert["conditions"])
        log_metrics = re.findall(r'local\.metric_type\[\\"(\w+)\\"\]', text)
        for used in log_metrics:
            assert used in defined, f"{name} charts log metric {used!r}, which monitoring.tf does not define"
        assert log_metrics or metric_types(text) & GOOGLE_METRICS, f"{name} watches no metric"
        for used in metric_types(text):
            assert used.startswith("${local.metric_type") or used in GOOGLE_METRICS, f"{name}: unknown metric {used}"
    (dashboard,) = resources("google_monitoring_dashboard").values()
    passed = set(re.findall(r"(\w+)\s*=\s*local\.metric_type\[", MONITORING.read_text()))
    template = DASHBOARD.read_text()
    placeholders = set(re.findall(r"(?<!\$)\$\{(\w+)\}", template))
    assert placeholders == passed, "the dashboard template and the variables monitoring.tf passes it differ"
    assert "templatefile" in dashboard["dashboard_json"]
    rendered = re.sub(r"(?<!\$)\$\{(\w+)\}", lambda m: f"logging.googleapis.com/user/veo_relay/{m[1]}", template).replace("$${", "${")
    tiles = json.loads(rendered)["mosaicLayout"]["tiles"]
    assert len(tiles) >= 6
    for used in metric_types(rendered):
        assert used.startswith("logging.googleapis.com/user/veo_relay/") or used in GOOGLE_METRICS, used


def test_every_log_metric_and_alert_is_in_the_runbook():
    text = OPERATIONS.read_text()
    for name in log_metric_names():
        assert f"veo_relay/{name}" in text, f"docs/OPERATIONS.md does not describe the metric veo_relay/{name}"
