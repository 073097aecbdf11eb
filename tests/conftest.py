"""Shared fixtures. `stack` starts the local stack once per session, only if a test asks for it."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# `import dev` (repo root) and `import veorelay` (functions/, as functions-framework loads it).
for path in (REPO, REPO / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from dev.stack import DEV_WEBHOOK_SECRET  # noqa: E402 (needs the path above)

# The simulator finishes jobs in about 2 s; poll it at that pace so the suite stays quick.
FAST_POLLING = {
    "VEO_POLL_INITIAL_DELAY_SECONDS": "0.5",
    "VEO_POLL_MIN_DELAY_SECONDS": "0.5",
    "VEO_POLL_MAX_DELAY_SECONDS": "1",
}


# Webhook retries within seconds, a short per-attempt timeout (so a slow receiver is quick to
# show), and a secret being rotated for the "default" client: the new one first, the old one
# being the stack's VEO_WEBHOOK_SECRET (so tests that verify with it keep passing).
ROTATED_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"veo-relay-tests-rotated-webhook!").decode()
FAST_WEBHOOKS = {
    "VEO_WEBHOOK_RETRY_SCHEDULE": "0,0.5,0.5,1,1",
    "VEO_WEBHOOK_TIMEOUT_SECONDS": "4",
    # "demo": the client id of the stack's dev API key, which the tests' jobs belong to.
    "VEO_WEBHOOK_SECRETS": json.dumps({c: [ROTATED_WEBHOOK_SECRET, DEV_WEBHOOK_SECRET] for c in ("default", "demo")}),
}


# Faults show within seconds: a provider call times out after 5 s, a job nothing wrote for 2 s
# counts as stalled for the sweep (which runs only when a test calls sweep_jobs), and uploads
# go in 256 KiB chunks, so a big video takes long enough to crash a finalize in the middle.
FAST_FAULTS = {
    "VEO_HTTP_TIMEOUT_SECONDS": "5",
    "VEO_SWEEP_STALL_SECONDS": "2",
    "VEO_UPLOAD_CHUNK_BYTES": "262144",
}


# Inputs and bodies: gs:// images may also come from the test clients' own bucket
# (tests/integration/test_images.py), and a request body must arrive within 3 s (9 s
# multipart), so a slow client is cut off quickly (tests/integration/test_slow_body.py).
INPUTS_AND_BODIES = {
    "VEO_INPUT_BUCKETS": "a-clients-own-bucket",
    "VEO_BODY_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="session")
def stack():
    """A running LocalStack(fast_retries=True): short queue backoffs, free ports, logs in stack.workdir."""
    from dev.stack import LocalStack, LocalStackError

    local = LocalStack(fast_retries=True, extra_env=FAST_POLLING | FAST_WEBHOOKS | FAST_FAULTS | INPUTS_AND_BODIES)
    try:
        local.start()
    except LocalStackError as err:  # the message already carries the failing process's log tail
        pytest.fail(f"local stack did not start: {err}", pytrace=False)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def stack_env(stack, monkeypatch):
    """The stack, with its env (emulator hosts, function URLs...) set in os.environ for this test."""
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    return stack
