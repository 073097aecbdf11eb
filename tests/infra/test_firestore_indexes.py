"""Every query gcp/store.py runs has the index it needs in infra/firestore.tf, and every
collection with an expire_at has its TTL, checked on the Terraform source."""

from __future__ import annotations

import re
from pathlib import Path

from infra_helpers import Terraform

STORE = Path(__file__).resolve().parents[2] / "functions" / "veorelay" / "gcp" / "store.py"


def test_the_stores_queries_have_their_composite_indexes(tf: Terraform):
    indexes = {(i["collection"], tuple(tuple(f) for f in i["fields"])) for i in tf.locals["firestore_indexes"].values()}
    # older_than: status == S and <field> < T order by <field>, for the sweep's two fields.
    for field in ("deadline_at", "updated_at"):
        assert ("jobs", (("status", "ASCENDING"), (field, "ASCENDING"))) in indexes, field
    # jobs_posting: generation_key == K and stream_submitted_at >= T order by stream_submitted_at.
    assert "generation_key" in STORE.read_text() and "stream_submitted_at" in STORE.read_text()
    assert ("jobs", (("generation_key", "ASCENDING"), ("stream_submitted_at", "ASCENDING"))) in indexes


def test_every_collection_the_store_writes_expire_at_into_has_a_ttl(tf: Terraform):
    ttl = {(t["collection"], t["field"]) for t in tf.locals["firestore_ttl_fields"].values()}
    collections = set(re.findall(r'^[A-Z_]+ = "([a-z_]+)"$', STORE.read_text(), re.MULTILINE))
    assert collections == {"jobs", "generation_claims"}
    assert {(c, "expire_at") for c in collections} <= ttl


def _index_of(query) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The composite index a query needs: its equality fields, then its order-by fields with
    their directions (the inequality field is the first order-by; __name__ is implicit)."""
    pb = query._to_protobuf()
    filters = pb.where.composite_filter.filters if pb.where.composite_filter.filters else [pb.where]
    equalities = [f.field_filter.field.field_path for f in filters if f.field_filter.op.name == "EQUAL"]
    orders = [(o.field.field_path, o.direction.name) for o in pb.order_by if o.field.field_path != "__name__"]
    return pb.from_[0].collection_id, tuple((f, "ASCENDING") for f in equalities) + tuple(orders)


def test_every_listing_query_has_its_composite_index(tf: Terraform, monkeypatch):
    """JobStore.list_jobs run with every combination of its filters and both orders; each query
    it sends (captured, no Firestore needed) must find its index in infra/firestore.tf."""
    from datetime import UTC, datetime

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.firestore_v1.query import Query

    from veorelay.gcp.store import JobStore

    sent = []
    monkeypatch.setattr(Query, "stream", lambda self, *a, **k: sent.append(self) or iter(()))
    store = JobStore(firestore.Client(project="p", credentials=AnonymousCredentials()))
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for status in (None, "running"):
        for provider in (None, "gemini"):
            for created in ({}, {"created_after": t}, {"created_before": t}, {"created_after": t, "created_before": t}):
                for order in ("desc", "asc"):
                    for after in ({}, {"after": "a" * 32, "after_created_at": t}):
                        assert store.list_jobs("c", status=status, provider=provider, order=order, **created, **after) == ([], False)
    declared = {(i["collection"], tuple(tuple(f) for f in i["fields"])) for i in tf.locals["firestore_indexes"].values()}
    needed = {_index_of(q) for q in sent}
    assert len(sent) == 2 * 2 * 4 * 2 * 2 and len(needed) == 8
    assert needed <= declared, sorted(needed - declared)


def test_the_sweeps_and_recoverys_queries_have_their_indexes(tf: Terraform, monkeypatch):
    """The same check for older_than and jobs_posting, from the queries the code builds."""
    from datetime import UTC, datetime

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.firestore_v1.query import Query

    from veorelay.core.job import JobStatus
    from veorelay.gcp.store import JobStore

    sent = []
    monkeypatch.setattr(Query, "stream", lambda self, *a, **k: sent.append(self) or iter(()))
    store = JobStore(firestore.Client(project="p", credentials=AnonymousCredentials()))
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for field in ("deadline_at", "updated_at"):
        store.older_than(JobStatus.RUNNING, field, t, 10)
    store.jobs_posting("k", t, 10)
    declared = {(i["collection"], tuple(tuple(f) for f in i["fields"])) for i in tf.locals["firestore_indexes"].values()}
    assert {_index_of(q) for q in sent} <= declared
