"""Step tests: each step function driven directly, over in-memory fakes (fakes.py), no emulator."""
from __future__ import annotations

from pathlib import Path

import pytest

from veorelay.runtime import Runtime

from .fake_providers import FakeProvider, FakeStreamingProvider
from .fakes import FakeBucket, FakeHttp, FakeScheduler, FakeStore, make_runtime
from .helpers import bucket_of, receiver_of, store_of, tasks_of

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.steps)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def streamer() -> FakeStreamingProvider:
    return FakeStreamingProvider()


@pytest.fixture
def rt(provider: FakeProvider, streamer: FakeStreamingProvider) -> Runtime:
    return make_runtime(providers=[provider, streamer])


@pytest.fixture
def store(rt: Runtime) -> FakeStore:
    return store_of(rt)


@pytest.fixture
def tasks(rt: Runtime) -> FakeScheduler:
    return tasks_of(rt)


@pytest.fixture
def bucket(rt: Runtime) -> FakeBucket:
    return bucket_of(rt)


@pytest.fixture
def receiver(rt: Runtime) -> FakeHttp:
    """rt.user_http: where webhooks are POSTed."""
    return receiver_of(rt)
