"""The benchmark runs: `bench.run --quick` on tiny sizes, with its own local stack. It reports
speed, it never asserts it: this only checks that every part ran and every figure is whole."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIELDS = {"name", "value", "unit", "baseline", "ratio", "target", "met"}


def test_quick_benchmark_runs_every_part_and_writes_every_figure(tmp_path):
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
    run = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text())["figures"]
    assert {f["part"] for f in figures} == {"1 copy", "2 polling", "3 e2e", "4 cost", "5 cold start"}
    for figure in figures:
        assert set(figure) >= FIELDS, figure
        assert isinstance(figure["value"], (int, float)), figure
        assert (figure["met"] is None) == (figure["target"] is None), figure
    by_name = {f["name"]: f for f in figures}
    assert by_name["jobs succeeded (6 submitted at once)"]["value"] == 1
    assert "figure" in run.stdout and "targets met" in run.stdout  # the printed table
