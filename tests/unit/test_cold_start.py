"""Cold starts: each entry point of functions/main.py imports and builds only what it uses.

Cloud Functions loads main.py for every function, each with its own entry point. A fresh
process here does what an instance does at its first request: imports main, and calls one
entry point (with no invoker token, so the call is refused: 401, and nothing runs past the
edge), which imports its own modules and builds its clients (veorelay/runtime.py CLIENTS).
Then it reports which libraries are loaded. This asserts structure, never speed (that is
`make bench`, Cold start)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
DIALECTS = ("flow", "gemini", "genaipro", "litellm_gemini", "newapi", "vertex")

PROBE = """
import json, sys
import flask
import main
from veorelay.runtime import runtime
entry = sys.argv[1]
with flask.Flask("probe").test_request_context("/", method="POST", json={}):
    status = getattr(main, entry)(flask.request).status_code
print(json.dumps({"status": status, "modules": sorted(sys.modules), "built": sorted(runtime().built())}))
"""


def first_request(entry: str) -> dict:
    """A fresh process: import main, one refused call to `entry`; what it then has loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEO_") and not k.endswith("_EMULATOR_HOST")}
    env.update({
        "PYTHONPATH": str(FUNCTIONS), "GOOGLE_CLOUD_PROJECT": "veo-relay-probe", "VEO_BUCKET": "probe-bucket",
        # Clients are built, never called: closed ports, and no credentials looked up.
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:9",
        "VEO_PROVIDERS_ENABLED": "litellm-gemini,genaipro", "VEO_DEFAULT_PROVIDER": "litellm-gemini",
        "VEO_LITELLM_GEMINI_BASE_URL": "http://127.0.0.1:9", "VEO_LITELLM_GEMINI_API_KEY": "probe-key",
        "VEO_GENAIPRO_BASE_URL": "http://127.0.0.1:9", "VEO_GENAIPRO_API_KEY": "probe-key",
        "VEO_TASKS_SERVICE_ACCOUNT": "invoker@veo-relay-probe.iam.gserviceaccount.com",
        f"VEO_{entry.upper()}_URL": f"https://{entry}.example.invalid/",
    })
    run = subprocess.run([sys.executable, "-c", PROBE, entry], cwd=FUNCTIONS, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["status"] == 401, found["status"]  # refused at the edge: no token
    return found


def loaded(found: dict, module: str) -> bool:
    return module in found["modules"]


@pytest.mark.parametrize("entry", ["poll_job", "stream_job", "submit_job"])
def test_functions_that_never_touch_the_bucket_do_not_import_cloud_storage(entry):
    found = first_request(entry)
    assert not loaded(found, "google.cloud.storage"), "Cloud Storage imported by " + entry
    assert "bucket" not in found["built"]
    # ...while what they do use is there: the probe did reach the entry point's runtime.
    assert loaded(found, "google.cloud.firestore") and loaded(found, "google.cloud.tasks_v2")
    assert {"store", "scheduler", "providers"} <= set(found["built"])
    # The dialects enabled here (VEO_PROVIDERS_ENABLED), and no other.
    assert [d for d in DIALECTS if loaded(found, f"veorelay.providers.{d}")] == ["genaipro", "litellm_gemini"]


def test_the_webhook_function_builds_no_provider_and_decodes_no_image():
    found = first_request("deliver_webhook")
    assert {"store", "scheduler", "bucket", "user_http"} <= set(found["built"])
    assert "providers" not in found["built"]
    assert not [d for d in DIALECTS if loaded(found, f"veorelay.providers.{d}")]
    assert not loaded(found, "PIL") and not loaded(found, "veorelay.steps.finalize")
