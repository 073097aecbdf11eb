"""GET /jobs cursors, as a property: whatever the jobs (creation times that tie, statuses, two
clients, deleted ones), page sizes, and jobs added between pages, following next_cursor gives
each of the client's listed jobs exactly once, in (created_at, id) order."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veorelay.core.api_keys import hash_key
from veorelay.edges.api import handle
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job

from .fake_providers import FakeProvider
from .fakes import make_runtime
from .helpers import PROMPT, store_of

KEYS = {"alice": "key-of-alice-0123456789", "bob": "key-of-bob-0123456789"}
T0 = datetime(2026, 5, 1, tzinfo=UTC)
_APP = flask.Flask("veo-relay-listing-property")

jobs_strategy = st.lists(st.tuples(st.integers(0, 5),  # creation tick: many ties
                                   st.sampled_from(["alice", "alice", "bob"]),
                                   st.sampled_from(["accepted", "running"]),
                                   st.sampled_from([False, False, False, True])),  # deleted
                         max_size=25)


def page(rt: Runtime, query: str) -> dict[str, Any]:
    with _APP.test_request_context(f"/jobs?{query}", headers={"Authorization": f"Bearer {KEYS['alice']}"}):
        response = handle(flask.request, rt)
    assert response.status_code == 200, response.get_data()
    return json.loads(response.get_data())


def add(rt: Runtime, tick: int, client: str, status: str, deleted: bool) -> dict[str, Any]:
    job, _ = create_job(rt, {"prompt": PROMPT, "provider": "fake"}, client_id=client)
    changes: dict[str, Any] = {"created_at": T0 + timedelta(seconds=tick), "status": status}
    if deleted:
        changes["deleted_at"] = T0
    store_of(rt).edit(job["id"], **changes)
    return store_of(rt).job(job["id"])


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=jobs_strategy, limits=st.lists(st.integers(1, 6), min_size=1, max_size=40),
       inserts=st.lists(st.integers(0, 3), max_size=40), order=st.sampled_from(["desc", "asc"]),
       status=st.sampled_from([None, "accepted"]))
def test_following_cursors_lists_each_job_once_in_order(jobs, limits, inserts, order, status):
    rt = make_runtime(env={"VEO_API_KEYS": json.dumps({c: [hash_key(k)] for c, k in KEYS.items()})}, providers=[FakeProvider()])
    stored = [add(rt, *spec) for spec in jobs]
    visible = [j for j in stored if j["client_id"] == "alice" and not j.get("deleted_at") and (status is None or j["status"] == status)]
    expected = [j["id"] for j in sorted(visible, key=lambda j: (j["created_at"], j["id"]), reverse=order == "desc")]
    query = f"order={order}" + (f"&status={status}" if status else "")
    seen: list[str] = []
    cursor = None
    for n, limit in enumerate(limits * 30):
        body = page(rt, f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert len(body["jobs"]) <= limit
        seen += [j["id"] for j in body["jobs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        if order == "desc" and n < len(inserts):  # newer jobs arrive meanwhile: they sort before the first page
            add(rt, 10 + inserts[n], "alice", "accepted", False)
    assert cursor is None
    assert seen == expected
