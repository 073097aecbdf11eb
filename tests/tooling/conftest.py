"""Tests of the local tooling in dev/ (simulators, the Cloud Tasks emulator, the stack, the
webhook receiver), kept apart from the product's tests: every test here carries the `tooling`
marker, so `pytest -m "not tooling"` runs only the product's.

Fixtures for the simulator tests: one in-process simulator on a free port (werkzeug
make_server in a thread) shared by the session, reset before each test."""

from __future__ import annotations

import pathlib
import sys
import threading

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `import dev.simulators` whatever pytest's rootdir is
    sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from dev.simulators.app import create_app  # noqa: E402

# Short generations keep the suite fast; tests that need timing set duration=.
FAST = {"duration_s": 0.3, "flow_proxy_delay_s": 0.05}


class Sim:
    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def reset(self, **config):
        self.http.post(f"{self.url}/_sim/reset").raise_for_status()
        self.http.post(f"{self.url}/_sim/config", json={**FAST, **config}).raise_for_status()

    def config(self, **config):
        r = self.http.post(f"{self.url}/_sim/config", json=config)
        r.raise_for_status()
        return r.json()

    def operations(self, **params):
        r = self.http.get(f"{self.url}/_sim/operations", params=params)
        r.raise_for_status()
        return r.json()

    def operation(self, op_id: str) -> dict:
        (op,) = self.operations(id=op_id)
        return op

    def calls(self, **params):
        r = self.http.get(f"{self.url}/_sim/calls", params=params)
        r.raise_for_status()
        return r.json()


HERE = pathlib.Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/tooling/ (a conftest hook sees the whole session's items)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.tooling)


@pytest.fixture(scope="session")
def sim_server():
    app = create_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Sim(f"http://127.0.0.1:{server.port}")
    server.shutdown()
    server.server_close()


@pytest.fixture
def sim(sim_server, monkeypatch):
    # Keys default to sim-key-<provider>; make sure the host env cannot change that.
    for var in ("VEO_LITELLM_GEMINI_API_KEY", "VEO_GEMINI_API_KEY", "VEO_VERTEX_API_KEY",
                "VEO_NEWAPI_API_KEY", "VEO_GENAIPRO_API_KEY", "VEO_FLOW_API_KEY",
                "VEO_FLOW_GOOGLE_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    sim_server.reset()
    return sim_server


def wait_until(fn, timeout: float = 5.0, interval: float = 0.05):
    """Call fn until it returns something truthy; return that (fail on timeout)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


@pytest.fixture
def until():
    return wait_until
