"""One measured run of a bench module in a fresh process: its last stdout line (JSON), its CPU
time and its own peak RSS.

Peak RSS is the child's VmHWM, read by the child itself as it ends, not wait4's ru_maxrss: Linux
carries ru_maxrss across exec, so a child spawned by a large parent (bench.run holds the stack's
clients and results by part 5) reports at least the parent's RSS. Each run then read the same
89.58 MiB, entry point and baseline alike. VmHWM belongs to the memory map exec creates."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEAK_MARK = "bench-child-peak-kib:"

# `python -m module args` run through runpy, then the process's own high-water mark on stderr.
_BOOT = f"""
import runpy, sys
sys.argv.pop(0)
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("\\n{PEAK_MARK}" + peak + "\\n")
"""


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system
    peak_rss_mib: float


def run_module(module: str, args: list[str], env: dict[str, str]) -> tuple[dict, Usage]:
    """`python -m <module> <args>` from the repository root; RuntimeError with its stderr's tail
    when it exits non-zero."""
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-c", _BOOT, module, *args], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=err)
        out = child.stdout.read()  # type: ignore[union-attr]
        child.stdout.close()  # type: ignore[union-attr]
        _, status, usage = os.wait4(child.pid, 0)  # reaps the child: its own CPU time
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if status != 0:
        raise RuntimeError(f"{module} {args} failed ({status}): {stderr[-3000:]}")
    peak_kib = next(int(line[len(PEAK_MARK):]) for line in reversed(stderr.splitlines()) if line.startswith(PEAK_MARK))
    return json.loads(out.decode().strip().splitlines()[-1]), Usage(usage.ru_utime + usage.ru_stime, peak_kib / 1024)
