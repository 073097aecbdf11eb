"""`make bench`: veo-relay measured on the local stack, side by side with its baselines.

    PYTHONPATH=functions:. .venv/bin/python -m bench.run            # full run (about 10-15 min)
    PYTHONPATH=functions:. .venv/bin/python -m bench.run --quick    # tiny sizes, for the test

Parts: 1 streaming copy into GCS (bench/copy_bench.py), 2 polling on a simulated clock
(bench/polling_sim.py; plus SSE push, measured on the stack in part 3's run), 3 many jobs end
to end (bench/e2e.py), 4 cost per 1,000 jobs (bench/cost.py), 5 cold start per entry point
(bench/cold_start.py, fresh processes, no stack). One LocalStack serves parts 1
and 3; its functions are counted (bench/stack_functions/). Writes bench/results.json
(every figure as {name, value, unit, baseline, ratio, target, met}), prints the table, and,
for a full run, rewrites docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dev.stack import DEFAULT_FUNCTIONS, LocalStack

from . import cold_start, copy_bench, cost, e2e, polling_sim, push_bench, report
from .results import Figure, table, write_json

REPO = Path(__file__).resolve().parents[1]
COUNTED_FUNCTIONS = REPO / "bench" / "stack_functions" / "counted_main.py"


def machine() -> dict[str, str | float]:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
        mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "os": platform.platform(), "python": platform.python_version(), "commit": commit,
            "load_average_at_start": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 (one script, part after part)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that the benchmark runs, measures nothing")
    ap.add_argument("--out", type=Path,
                    help="results file (default bench/results.json; --quick: bench/tmp/results-quick.json, git-ignored)")
    ap.add_argument("--docs", type=Path, default=REPO / "docs" / "BENCHMARKS.md", help="report to rewrite after a full run")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    out = args.out or (REPO / "bench" / "tmp" / "results-quick.json" if args.quick else REPO / "bench" / "results.json")
    command = "PYTHONPATH=functions:. .venv/bin/python -m bench.run" + (" --quick" if args.quick else "")
    meta = {"command": command, "quick": args.quick, "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine()}
    t0 = time.monotonic()

    figures: list[Figure] = []
    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", file=sys.stderr, flush=True)

    say("part 2: polling on a simulated clock")
    figures += polling_sim.run(args.quick)

    workdir = REPO / ".stack" / f"bench-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    counts_dir = workdir / "counts"
    counts_dir.mkdir(parents=True, exist_ok=True)
    functions = [f for f in DEFAULT_FUNCTIONS if f != "sweep_jobs"]  # the sweep runs on a schedule, not here
    stack = LocalStack(functions_source=COUNTED_FUNCTIONS, functions=functions, workdir=workdir,
                       extra_env={**e2e.STACK_ENV, "VEO_BENCH_COUNTS_DIR": str(counts_dir)})
    say("starting the local stack")
    stack.start()
    try:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        bucket = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": stack.env["STORAGE_EMULATOR_HOST"]}).bucket(stack.env["VEO_BUCKET"])
        say("part 1: streaming copy")
        copy_figures = copy_bench.run(stack, bucket, args.quick)
        figures[:0] = copy_figures
        say("part 3: end to end")
        e2e_figures, usage = e2e.run(stack, counts_dir, args.quick)
        say("part 2 (push): completion events on the stack")
        poll_only_p95 = next((f.value for f in e2e_figures if f.name.startswith("overhead provider done -> webhook received, p95")), None)
        e2e_figures += push_bench.run(stack, counts_dir, args.quick, poll_only_p95)
    finally:
        say("stopping the local stack")
        stack.stop()
    push = [f for f in e2e_figures if f.part == "2 polling"]
    figures += push + [f for f in e2e_figures if f not in push]
    stream = next((f.value for f in copy_figures if f.name.startswith("throughput") and f.target is None), None)
    figures += cost.run(usage, stream)
    figures += cold_start.run(args.quick, say)  # part 5, once the stack is down: fresh processes, no stack

    meta["seconds"] = round(time.monotonic() - t0, 1)
    meta["stack_logs"] = str(workdir / "logs")
    write_json(out, figures, meta)
    print(table(figures))
    missed = [f.name for f in figures if f.met is False]
    print(f"\n{len(figures)} figures, {sum(f.met is True for f in figures)} targets met, {len(missed)} missed; "
          f"results in {out} ({meta['seconds']} s)")
    if not args.quick and not args.no_docs:
        report.write(args.docs, figures, meta)
        print(f"report in {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
