"""Functions called in-process through the functions-framework test client, against the
real emulators (the same Firestore/GCS/Tasks the integration tests use)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from functions_framework import create_app

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
    """call("api") → a Flask test client for that entry point."""
    clients = {}

    def client_for(target: str):
        if target not in clients:
            clients[target] = create_app(target=target, source=SOURCE).test_client()
            if target == "api":  # as client `demo`, with the stack's dev API key
                clients[target].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {stack.api_key}"
        return clients[target]

    return client_for


@pytest.fixture(scope="module")
def jobs_collection(function_env):
    from google.cloud import firestore

    return firestore.Client(project=function_env["GOOGLE_CLOUD_PROJECT"]).collection("jobs")
