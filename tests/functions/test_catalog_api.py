"""The catalog through the public api function: GET /providers shows every model with its
status, replacement, rules and prices, and a job naming a retired model is refused with its
replacement before anything is stored or paid for (no job, no input object, no provider call)."""
from __future__ import annotations

import base64

import pytest
import requests

from tests.steps.image_files import png

pytestmark = pytest.mark.integration


def test_get_providers_lists_each_model_with_status_replacement_rules_and_prices(call):
    resp = call("api").get("/providers")
    assert resp.status_code == 200
    providers = resp.get_json()["providers"]
    vertex = providers["vertex"]
    assert vertex["default_model"] == "veo-3.1-generate-001" and vertex["models"][0] == "veo-3.1-generate-001"
    assert "4k" in vertex["resolutions"]
    models = {m["id"]: m for m in vertex["catalog"]}
    assert models["veo-3.0-generate-001"]["status"] == "retired"
    assert models["veo-3.0-generate-001"]["replacement"] == "veo-3.1-generate-001"
    assert models["veo-3.0-generate-001"]["retired_on"] == "2026-06-30"
    standard = models["veo-3.1-generate-001"]
    assert (standard["status"], standard["tier"]) == ("ga", "standard")
    assert standard["resolutions"] == {"720p": [4, 6, 8], "1080p": [8], "4k": [8]}
    assert standard["price_per_second"]["4k"] == 0.6 and standard["extension"]["added_seconds"] == 7
    assert providers["gemini"]["default_model"] == "veo-3.1-generate-preview"
    assert {m["id"] for m in providers["gemini"]["catalog"]} >= {"veo-3.1-lite-generate-preview", "veo-3.0-generate-001"}


@pytest.mark.parametrize("provider,retired,replacement", [
    ("vertex", "veo-3.0-generate-001", "veo-3.1-generate-001"),
    ("gemini", "veo-3.0-fast-generate-001", "veo-3.1-fast-generate-preview"),
    ("litellm-gemini", "veo-3.0-generate-preview", "veo-3.1-generate-preview"),
])
def test_a_retired_model_is_refused_with_its_replacement_and_nothing_is_created(
        call, stack, jobs_collection, provider, retired, replacement):
    from google.cloud import storage

    bucket = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"]).bucket(stack.env["VEO_BUCKET"])
    prompt = f"a retired model on {provider} ({retired})"
    jobs_before = jobs_collection.count().get()[0][0].value
    inputs_before = sum(1 for _ in bucket.list_blobs(prefix="inputs/"))
    image = {"base64": base64.b64encode(png()).decode(), "mime_type": "image/png"}
    resp = call("api").post("/jobs", json={"prompt": prompt, "provider": provider, "model": retired, "image": image})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert (error["code"], error["field"]) == ("unsupported_option", "model")
    assert retired in error["message"] and replacement in error["message"] and "retired" in error["message"]
    assert jobs_collection.count().get()[0][0].value == jobs_before
    assert sum(1 for _ in bucket.list_blobs(prefix="inputs/")) == inputs_before
    calls = requests.get(f"{stack.simulator_url}/_sim/calls", timeout=5).json()
    assert not [c for c in calls if prompt in (c.get("prompt") or "")]


def test_a_job_on_the_default_model_of_vertex_runs_on_veo_3_1(call):
    resp = call("api").post("/jobs", json={"prompt": "a default vertex job", "provider": "vertex"})
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["model"] == "veo-3.1-generate-001"
