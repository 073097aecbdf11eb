"""docs/PROVIDERS.md's model tables and README.md's "## Providers" table are generated from the
catalog (dev/catalog_doc.py), so neither can drift from what the capability check reads.

After changing a catalog file, regenerate them:

    UPDATE_CATALOG_DOC=1 .venv/bin/python -m pytest tests/unit/test_catalog_doc.py
"""
from __future__ import annotations

import os

import pytest

from dev import catalog_doc
from veorelay.config import shipped_catalog
from veorelay.core.catalog import merge_catalog


def test_the_catalog_tables_are_generated_from_the_catalog():
    found = catalog_doc.stale()
    if not found:
        return
    if os.environ.get("UPDATE_CATALOG_DOC"):
        catalog_doc.write()
        return
    pytest.fail(f"{', '.join(p.name for p in found)} out of date with functions/veorelay/catalog/: "
                "rerun with UPDATE_CATALOG_DOC=1 (or python -m dev.catalog_doc)")


def test_a_catalog_change_makes_the_documents_stale():
    """The check can fail: a price changed in the catalog is a stale table in both documents."""
    gemini = shipped_catalog().provider("gemini")
    changed = merge_catalog(shipped_catalog(), "change.toml", {"gemini": {"default_model": "veo-3.1-lite-generate-preview"}})
    assert gemini.default_model != "veo-3.1-lite-generate-preview"
    assert {p.name for p in catalog_doc.stale(changed)} == {"PROVIDERS.md", "README.md"}


def test_every_model_and_retirement_is_in_the_documents():
    doc = catalog_doc.PROVIDERS_DOC.read_text(encoding="utf-8")
    readme = catalog_doc.README.read_text(encoding="utf-8")
    for provider in shipped_catalog().providers.values():
        assert f"### `{provider.provider}`" in doc
        for spec in provider.models:
            assert f"| `{spec.id}` |" in doc
            if spec.retired:
                assert f"`{spec.id}` → `{spec.replacement}`" in readme


def test_markers_missing_is_an_error_not_a_silent_rewrite():
    with pytest.raises(ValueError, match="must hold"):
        catalog_doc.replaced("no markers here", catalog_doc.BEGIN, catalog_doc.END, "x", "doc")
