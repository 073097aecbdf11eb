"""A pytest plugin that writes what the `faults` tests prove, for docs/RELIABILITY.md.

    VEO_FAULTS_CATALOG=out.json python -m pytest --collect-only -q -m faults -p tests.faults_catalog

One entry per collected test: its node id and what it proves (the `proves` text of its
scenario parameter, else the first line of its docstring).
"""
from __future__ import annotations

import json
import os


def describe(item) -> str:
    params = getattr(getattr(item, "callspec", None), "params", {})
    for value in params.values():
        if isinstance(getattr(value, "proves", None), str):
            return value.proves
    doc = (getattr(item.function, "__doc__", None) or "").strip()
    first = " ".join(doc.split("\n\n")[0].split()) if doc else item.originalname.removeprefix("test_").replace("_", " ")
    callspec = getattr(item, "callspec", None)
    return f"{first} [{callspec.id}]" if callspec is not None and not params.get("case") else first


def pytest_collection_finish(session) -> None:
    target = os.environ.get("VEO_FAULTS_CATALOG")
    if not target:
        return
    entries = [{"nodeid": item.nodeid, "proves": describe(item)} for item in session.items]
    with open(target, "w", encoding="utf-8") as out:
        json.dump(entries, out, indent=1)
