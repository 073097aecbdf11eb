"""Shared fixtures. `stack` starts the local stack once per session, only if a test asks for it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# `import dev` (repo root) and `import veorelay` (functions/, as functions-framework loads it).
for path in (REPO, REPO / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


# The simulator finishes jobs in about 2 s; poll it at that pace so the suite stays quick.
FAST_POLLING = {
    "VEO_POLL_INITIAL_DELAY_SECONDS": "0.5",
    "VEO_POLL_MIN_DELAY_SECONDS": "0.5",
    "VEO_POLL_MAX_DELAY_SECONDS": "1",
}


@pytest.fixture(scope="session")
def stack():
    """A running LocalStack(fast_retries=True): short queue backoffs, free ports, logs in stack.workdir."""
    from dev.stack import LocalStack, LocalStackError

    local = LocalStack(fast_retries=True, extra_env=FAST_POLLING)
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
