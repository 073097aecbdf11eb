"""Who may call what: the public API needs an API key (production-safe when none is
configured), and the internal functions answer only their schedulers."""
from __future__ import annotations

import dataclasses

import flask
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runtime_with(function_env):
    """The stack's runtime (real emulators) with some settings changed."""
    from veorelay.runtime import runtime

    def build(**settings):
        rt = runtime()
        return dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, **settings))

    return build


def call_api(rt, path="/providers", method="GET", headers=None):
    from veorelay.edges import api

    with flask.Flask(__name__).test_request_context(path, method=method, headers=headers or {}):
        return api.handle(flask.request, rt)


def test_a_deployment_without_api_keys_refuses_everyone(runtime_with, stack):
    rt = runtime_with(api_keys={}, auth_disabled=False)
    for headers in ({}, {"Authorization": f"Bearer {stack.api_key}"}):
        resp = call_api(rt, headers=headers)
        assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthenticated"


def test_only_an_explicit_switch_turns_api_keys_off(runtime_with):
    resp = call_api(runtime_with(api_keys={}, auth_disabled=True))
    assert resp.status_code == 200 and "litellm-gemini" in resp.get_json()["providers"]


def test_each_dev_client_is_known_by_its_own_key(call, stack):
    from veorelay.edges.auth import authenticate
    from veorelay.runtime import runtime

    keys = runtime().settings.api_keys
    assert {authenticate(f"Bearer {key}", keys) for key in stack.api_keys.values()} == {"demo", "other"}
    assert all(key not in stack.env["VEO_API_KEYS"] for key in stack.api_keys.values())  # hashes only


def test_sweep_jobs_answers_only_the_scheduler(call, bare):
    refused = bare("sweep_jobs").post("/", json={}, headers={"X-CloudScheduler": "true"})  # a header anyone can send
    assert (refused.status_code, refused.get_json()["status"]) == (401, "unauthenticated")
    resp = call("sweep_jobs").post("/", json={})  # the invoker's OIDC token, as Cloud Scheduler sends it
    assert resp.status_code == 200
    assert {"deadline_exceeded", "restarted", "errors", "complete"} <= set(resp.get_json())
