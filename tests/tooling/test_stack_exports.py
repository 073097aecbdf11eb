"""`make stack` (dev/stack.py main) prints what the `veorelay` command and Python client read:
VEORELAY_URL (the api function) and VEORELAY_API_KEY (client demo's dev key), beside the
stack's own export lines, also into --env-file. A stand-in LocalStack: no process is started."""
from __future__ import annotations

import signal

import pytest

import dev.stack as stack_module

pytestmark = pytest.mark.tooling


class StandIn:
    def __init__(self, **_options):
        self.env = {"VEO_BUCKET": "veo-relay-local"}
        self.function_urls = {"api": "http://127.0.0.1:18080/", "submit_job": "http://127.0.0.1:18081/"}
        self.api_keys = dict(stack_module.DEV_API_KEYS)
        self.stopped = False

    def start(self):
        return self

    def stop(self):
        self.stopped = True


def test_make_stack_prints_the_clients_exports(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(stack_module, "LocalStack", StandIn)

    def interrupted(_seconds):
        raise KeyboardInterrupt  # Ctrl-C, once everything is printed

    monkeypatch.setattr(stack_module.time, "sleep", interrupted)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        assert stack_module.main(["--env-file", str(tmp_path / "env")]) == 0
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    lines = capsys.readouterr().out.splitlines()
    assert "export VEO_BUCKET=veo-relay-local" in lines
    assert "export VEORELAY_URL=http://127.0.0.1:18080" in lines
    assert f"export VEORELAY_API_KEY={stack_module.DEV_API_KEYS['demo']}" in lines
    assert (tmp_path / "env").read_text().splitlines() == lines


def test_no_api_function_no_client_exports():
    local = StandIn()
    local.function_urls = {}
    assert stack_module.client_env(local) == {}
