"""The dependency lists stay as the build expects: functions/requirements.txt is the one list of
runtime dependencies (deployed with the source), every entry pinned; the root requirements.txt
only points at it; requirements-dev.txt adds the dev tools on top of it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# name[extras]==version, nothing else on the line (an environment marker would hide a platform).
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!_-]+$")


def entries(path: Path) -> list[str]:
    """The lines pip reads: comments and blank lines dropped."""
    lines = (line.split(" #", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_the_root_requirements_only_point_at_the_functions_list():
    assert entries(REPO / "requirements.txt") == ["-r functions/requirements.txt"]


def test_every_runtime_dependency_is_pinned():
    deps = entries(REPO / "functions" / "requirements.txt")
    assert deps, "functions/requirements.txt lists no dependency"
    unpinned = [line for line in deps if not PINNED.match(line)]
    assert not unpinned, f"pin each runtime dependency with == (Cloud Functions installs this file as is): {unpinned}"
    names = [re.split(r"[\[=]", line, maxsplit=1)[0].lower().replace("_", "-") for line in deps]
    assert len(names) == len(set(names)), f"a dependency is listed twice: {sorted(n for n in names if names.count(n) > 1)}"


def test_the_dev_requirements_start_from_the_runtime_ones():
    assert entries(REPO / "requirements-dev.txt")[0] == "-r requirements.txt"


def test_the_pin_pattern():
    assert PINNED.match("requests==2.34.2") and PINNED.match("uvicorn[standard]==0.30.1")
    assert not any(PINNED.match(line) for line in ("requests>=2", "requests", "requests==2.34.2 ; python_version<'3.12'", "-e ."))
