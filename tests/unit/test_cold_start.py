"""Cold starts: each entry point of functions/main.py imports and builds only what it uses.

Cloud Functions loads main.py for every function, each with its own entry point. A fresh
process here does what an instance does at its first request: imports main, and calls one
entry point (with no invoker token, so the call is refused: 401, and nothing runs past the
edge), which imports its own modules and builds its clients (veorelay/runtime.py CLIENTS).
Then it reports which libraries are loaded. This asserts structure, never speed (that is
`make bench`, Cold start)."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veorelay import config

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
DIALECTS = ("flow", "gemini", "genaipro", "litellm_gemini", "newapi", "vertex")

PROBE = """
import json, sys
import flask
import main
from veorelay.runtime import runtime
entry = sys.argv[1]
with flask.Flask("probe").test_request_context("/", method="POST", json={}):
    if entry == "on_request_object":  # a cloud event: the refusal is raised, as werkzeug's answer
        from cloudevents.http import CloudEvent
        try:
            main.on_request_object(CloudEvent({"type": "google.cloud.storage.object.v1.finalized", "source": "probe",
                                               "id": "1"}, {}))
        except Exception as refused:
            status = refused.response.status_code
    else:
        status = getattr(main, entry)(flask.request).status_code
    if len(sys.argv) > 2:  # then an event for that object, as if its caller were verified
        from veorelay.edges.request_objects import on_object_finalized
        on_object_finalized(runtime(), "2", {"bucket": "probe-bucket", "name": sys.argv[2], "generation": "7"})
print(json.dumps({"status": status, "modules": sorted(sys.modules), "built": sorted(runtime().built())}))
"""


@functools.cache
def first_request(entry: str, *then_object: str) -> dict:
    """A fresh process: import main, one refused call to `entry`; what it then has loaded. With
    an object name (on_request_object only), that object's event is then handled."""
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
    run = subprocess.run([sys.executable, "-c", PROBE, entry, *then_object], cwd=FUNCTIONS, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    found: dict = json.loads(run.stdout.strip().splitlines()[-1])
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


HTTP_ENTRIES = ("api", "submit_job", "poll_job", "stream_job", "finalize_job", "deliver_webhook", "sweep_jobs", "provider_events")


@pytest.mark.parametrize("entry", HTTP_ENTRIES)
def test_no_function_reads_a_valid_environment_with_pydantic_settings(entry):
    """config.py reads a valid environment itself; pydantic-settings is built only to refuse one."""
    assert not loaded(first_request(entry), "pydantic_settings")


@pytest.mark.parametrize("entry", ["deliver_webhook", "submit_job", "stream_job", "poll_job", "finalize_job"])
def test_functions_past_acceptance_import_no_pydantic(entry):
    """Neither their settings nor their steps validate a request (a job's request was validated
    when it was accepted; core/accepted.py reads it back): pydantic stays out of their cold start."""
    found = first_request(entry)
    assert loaded(found, "veorelay.core.accepted") or entry in {"deliver_webhook", "poll_job", "finalize_job"}
    assert not loaded(found, "pydantic") and not loaded(found, "veorelay.core.request")


def test_request_objects_load_the_request_schema_only_for_a_request_object():
    """on_request_object hears of every object finalized in the bucket, mostly veo-relay's own
    videos and results: a refused event, or one for a video, never imports the schema (pydantic)."""
    for found in (first_request("on_request_object"), first_request("on_request_object", "videos/job-1/0.mp4")):
        assert not loaded(found, "pydantic") and not loaded(found, "veorelay.steps.accept")
        assert {"store", "scheduler", "bucket"} <= set(found["built"])
    assert loaded(first_request("on_request_object", "videos/job-1/0.mp4"), "veorelay.edges.request_objects")


@pytest.mark.parametrize("entry", ["finalize_job", "api"])
def test_pyav_and_pillow_wait_for_the_first_video_probed(entry):
    """gcp/media_probe.py imports PyAV (and Pillow, for the poster) when it first reads a video:
    the first real finalize pays for them, a cold start does not."""
    found = first_request(entry)
    assert loaded(found, "veorelay.gcp.media_probe") or entry == "api"
    assert not loaded(found, "av")
    if entry == "finalize_job":
        assert not loaded(found, "PIL")


@pytest.mark.parametrize("entry", ["poll_job", "stream_job", "finalize_job"])
def test_dialects_import_their_answer_parsers_when_they_read_an_answer(entry):
    """ijson (inline answers, providers/inline.py) and sseclient (genaipro's stream) are imported
    where an answer is read, not when the dialect is built."""
    found = first_request(entry)
    assert loaded(found, "veorelay.providers.genaipro")  # built: the probe enables it
    assert not loaded(found, "ijson") and not loaded(found, "sseclient")


def test_a_refused_api_call_imports_no_route_of_its_own():
    """Each api route imports the steps it uses: a refused (or GET) first request leaves the job
    creation (and the request schema), the OpenAPI document and the finalize step alone."""
    found = first_request("api")
    for module in ("veorelay.steps.accept", "veorelay.core.openapi", "veorelay.steps.delete", "veorelay.steps.finalize",
                   "veorelay.steps.cancel", "veorelay.steps.spend", "veorelay.gcp.reader"):
        assert not loaded(found, module), module
    assert {"store", "providers", "budgets"} <= set(found["built"])


# ------------------------------------------------------------------------------ the quick reading
# config.py reads a valid environment without pydantic (read_environment): it must take only
# what pydantic takes, as pydantic reads it. Checked against pydantic's own reading (_validated).
_WORDS = ["0", "1", "-1", "007", "+5", "1_000", "1.5", "1.", ".5", "1e3", "inf", "nan", "true", "True", "yes", "on", "off",
          "no", "f", "maybe", "262144", "786432", "604800", "604801", "http://x", "https://a.b/c", "ftp://x", "videos",
          "inputs", "INFO", "debug", "a b", "acme", "{}", "[]", '{"a": ["b"]}', "static", "request", ",", "0,5,300",
          "\u0663", "\uff11", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "projects/myproj1/topics/abc", "newapi"]
_VALUE = st.one_of(st.sampled_from(_WORDS), st.integers(-10, 10**7).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=12))


def _reading(environ: dict[str, str], read) -> object:
    try:
        env = read(environ)
    except config.ConfigError as refused:
        return ("refused", str(refused))
    return {name: (getattr(env, name), type(getattr(env, name)).__name__) for name in config.ENVIRONMENT_VARIABLES}


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(st.sampled_from(config.ENVIRONMENT_VARIABLES), _VALUE, max_size=3))
def test_the_quick_reading_of_settings_is_pydantics(values):
    environ = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b"} | values
    assert _reading(environ, config.read_environment) == _reading(environ, config._validated)
