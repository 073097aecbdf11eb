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
