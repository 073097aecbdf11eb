"""docs/RELIABILITY.md's table of fault scenarios is generated from the suite: it lists every
collected `faults` test and what it proves, so the document cannot drift from the tests.

After adding or changing a `faults` test, regenerate it:

    UPDATE_RELIABILITY_DOC=1 .venv/bin/python -m pytest tests/unit/test_reliability_doc.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "RELIABILITY.md"
START, END = "<!-- faults-table:start -->", "<!-- faults-table:end -->"
MIN_SCENARIOS = 25


def collected_faults() -> list[dict]:
    """Collect (only) the suite's `faults` tests in a child pytest, with tests/faults_catalog.py."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "faults.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "faults", "-p", "tests.faults_catalog",
             "-p", "no:cacheprovider", "tests"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env={**os.environ, "VEO_FAULTS_CATALOG": str(out), "PYTHONPATH": str(REPO)},
        )
        assert out.exists(), f"collecting the faults tests failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return json.loads(out.read_text())


def table(entries: list[dict]) -> str:
    rows = ["| # | scenario (test) | what it proves |", "|---:|---|---|"]
    for number, entry in enumerate(entries, 1):
        path, _, name = entry["nodeid"].partition("::")
        proves = entry["proves"].replace("|", "\\|")
        rows.append(f"| {number} | `{Path(path).name}::{name}` | {proves} |")
    return "\n".join(rows)


def test_the_faults_table_is_generated_from_the_suite():
    entries = collected_faults()
    assert len(entries) >= MIN_SCENARIOS, f"only {len(entries)} faults scenarios"
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC.name} lost its {START} ... {END} markers"
    before, rest = text.split(START, 1)
    current, after = rest.split(END, 1)
    wanted = "\n" + table(entries) + "\n"
    if current == wanted:
        return
    if os.environ.get("UPDATE_RELIABILITY_DOC"):
        DOC.write_text(before + START + wanted + END + after, encoding="utf-8")
        return
    pytest.fail(f"{DOC.relative_to(REPO)}: the faults table differs from the collected `faults` tests. Regenerate it with\n"
                "    UPDATE_RELIABILITY_DOC=1 .venv/bin/python -m pytest tests/unit/test_reliability_doc.py", pytrace=False)
