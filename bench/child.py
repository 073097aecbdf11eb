"""One measured run of a bench module in a fresh process: its last stdout line (JSON) and its own
rusage (os.wait4 reaps it: peak RSS and CPU of that process alone)."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, args: list[str], env: dict[str, str]) -> tuple[dict, resource.struct_rusage]:
    """`python -m <module> <args>` from the repository root; RuntimeError with its stderr's tail
    when it exits non-zero."""
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=err)
        out = child.stdout.read()  # type: ignore[union-attr]
        child.stdout.close()  # type: ignore[union-attr]
        _, status, usage = os.wait4(child.pid, 0)  # reaps the child: its own rusage, peak RSS included
        child.returncode = os.waitstatus_to_exitcode(status)
        if status != 0:
            err.seek(0)
            raise RuntimeError(f"{module} {args} failed ({status}): {err.read().decode()[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage
