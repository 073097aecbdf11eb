"""Functions called in-process through the functions-framework test client, against the
real emulators (the same Firestore/GCS/Tasks the integration tests use)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from functions_framework import create_app

from veorelay.config import INTERNAL_ENTRY_POINTS

SOURCE = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")


@pytest.fixture(scope="module")
def function_env(stack):
    from veorelay.runtime import runtime

    saved = dict(os.environ)
    os.environ.update(stack.env)
    runtime.cache_clear()
    yield stack.env
    os.environ.clear()
    os.environ.update(saved)
    runtime.cache_clear()


@pytest.fixture(scope="module")
def call(function_env, stack):
    """call("api") → a Flask test client for that entry point, calling as its real caller does:
    the api as client `demo` (the stack's dev API key), an internal function as the invoker (an
    OIDC token for its own URL, signed with the stack's key, as Cloud Tasks/Scheduler/Eventarc's)."""
    clients = {}

    def client_for(target: str):
        if target not in clients:
            clients[target] = create_app(target=target, source=SOURCE).test_client()
            if target == "api":
                clients[target].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {stack.api_key}"
            elif target in INTERNAL_ENTRY_POINTS:
                clients[target].environ_base["HTTP_AUTHORIZATION"] = stack.invoker_headers(target)["Authorization"]
        return clients[target]

    return client_for


@pytest.fixture(scope="module")
def bare(function_env):
    """bare("poll_job") → a test client for that entry point that adds no credentials."""
    clients = {}

    def client_for(target: str):
        if target not in clients:
            clients[target] = create_app(target=target, source=SOURCE).test_client()
        return clients[target]

    return client_for


@pytest.fixture(scope="module")
def jobs_collection(function_env):
    from google.cloud import firestore

    return firestore.Client(project=function_env["GOOGLE_CLOUD_PROJECT"]).collection("jobs")
