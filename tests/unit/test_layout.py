"""The package layout holds: the import layers (import-linter's contracts in pyproject.toml),
steps/chain.py as the only builder of Cloud Tasks requests, and a docstring on every module."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
PACKAGE = FUNCTIONS / "veorelay"
CHAIN = PACKAGE / "steps" / "chain.py"


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return path.relative_to(FUNCTIONS).as_posix()


def task_request_calls(tree: ast.Module) -> list[int]:
    """Lines that call TaskRequest(...), under any name it was imported as (or as module.TaskRequest)."""
    names = {"TaskRequest"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update(alias.asname for alias in node.names if alias.name == "TaskRequest" and alias.asname)
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id in names) or (isinstance(func, ast.Attribute) and func.attr == "TaskRequest"):
            lines.append(node.lineno)
    return lines


def test_the_package_has_modules():
    modules = package_modules()
    assert CHAIN in modules
    assert len(modules) > 30, "functions/veorelay moved? this test scans it"


def test_only_the_chain_builds_task_requests():
    """Every task's name, queue, payload and deadline come from steps/chain.py."""
    offenders = {rel(path): lines for path in package_modules() if path != CHAIN and (lines := task_request_calls(parse(path)))}
    assert not offenders, f"TaskRequest(...) built outside steps/chain.py (add a builder there instead): {offenders}"
    assert task_request_calls(parse(CHAIN)), "steps/chain.py no longer builds TaskRequest: update this test"


def test_the_scan_sees_aliases_and_attributes():
    tree = ast.parse("from veorelay.gcp.tasks import TaskRequest as T\nimport veorelay.gcp.tasks as t\nT(1)\nt.TaskRequest(2)\nstr(3)\n")
    assert task_request_calls(tree) == [3, 4]


def test_every_module_has_a_docstring():
    missing = [rel(path) for path in package_modules() if not ast.get_docstring(parse(path))]
    assert not missing, f"modules without a module docstring (say what the module is for): {missing}"


def lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed (requirements-dev.txt: import-linter)", pytrace=False)
    return found


def test_the_import_contracts_are_kept():
    """import-linter's contracts (pyproject.toml [tool.importlinter]): the layers
    edges -> steps -> runtime -> (gcp | net | providers) -> config -> core, a core without I/O
    libraries, and edges imported by main.py only."""
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}
    result = subprocess.run([lint_imports(), "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
