"""Part 2 (push): providers that push completion events, on the local stack, beside the seed
schedule run on the same generation times.

The simulated Gemini API and Vertex push like the real ones (dev/simulators/push.py); the
functions verify each event and check the job at once (steps/events_in.py), and the backstop
schedule learns how reliably the events come (gcp/poll_stats.py). Each scenario runs a warm-up
batch first (what the schedule learns from: as a deployment that has been running), waits for
the learned statistics to be read again (VEO_POLL_STATS_TTL_SECONDS), then measures a batch:

* every event delivered (gemini, per-request webhooks): detection delay and status checks;
* 30 % of events dropped at random (vertex, Pub/Sub): the backstop's delay and checks;
* 200 jobs at once (gemini): provider done -> webhook received, p95, beside part 3's 200
  poll-only jobs of the same run.

Status checks are the provider's operation calls per job, counted at the simulator (the check an
event asks for included). The seed schedule (check at once, then 10 s x1.2 up to 30 s) is
replayed on each job's own generation time, scaled like every poll setting (bench/e2e.py).
"""
from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import requests

from . import e2e
from .polling_sim import reference_checks
from .results import Figure


def _sim_config(stack, **values: float) -> None:
    requests.post(f"{stack.simulator_url.rstrip('/')}/_sim/config", json=values, timeout=10).raise_for_status()


def _seed(durations: list[float]) -> tuple[float, float]:
    """(checks, delay) per job of the seed schedule, on these (scaled) generation times."""
    rows = [reference_checks(d * e2e.TIME_SCALE) for d in durations]
    return statistics.fmean(r[0] for r in rows), statistics.fmean(r[1] for r in rows) / e2e.TIME_SCALE


def detection_batch(stack, jobs: int, median_s: float, provider: str, seed: int, timeout_s: float) -> dict[str, Any]:
    """Submit `jobs` jobs at once and wait until each was seen done by veo-relay (left `running`):
    what detection takes is done -> `downloading`, so the download and webhook are not waited for."""
    import random
    import uuid
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime

    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]
    api, sim = stack.function_urls["api"].rstrip("/"), stack.simulator_url.rstrip("/")
    headers = e2e.api_headers(stack)
    prompts = [f"bench push {tag} #{i:04d} [sim:duration={rng.lognormvariate(math.log(median_s), e2e.SIGMA):.2f}]"
               for i in range(jobs)]

    def submit(prompt: str) -> str:
        resp = requests.post(f"{api}/jobs", json={"prompt": prompt, "provider": provider}, headers=headers, timeout=60)
        resp.raise_for_status()
        return resp.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(submit, prompts))
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < jobs and time.monotonic() < deadline:
        for job_id in ids:
            if job_id not in seen:
                job = requests.get(f"{api}/jobs/{job_id}", headers=headers, timeout=30).json()
                if job.get("status") not in ("accepted", "running"):
                    seen[job_id] = job
        time.sleep(0.5)
    ops = {op["prompt"]: op for op in requests.get(f"{sim}/_sim/operations", params={"hash": "0"}, timeout=60).json()
           if tag in (op.get("prompt") or "")}
    calls = [c for c in requests.get(f"{sim}/_sim/calls", timeout=60).json() if tag in (c.get("prompt") or "")]
    detection = []
    for job in seen.values():
        op = ops.get(job["request"]["prompt"])
        downloading = (job.get("timestamps") or {}).get("downloading")
        if op and downloading:
            at = datetime.fromisoformat(downloading.replace("Z", "+00:00")).timestamp()
            detection.append(at - (op["created_at"] + op["duration"]))
    return {"jobs": jobs, "seen": len(seen), "detection": detection, "calls": calls,
            "durations": [op["duration"] for op in ops.values()]}


def scenario(stack, provider: str, jobs: int, warmup: int, drop_rate: float, seed: int, quick: bool,
             rounds: int = 2) -> dict[str, Any]:
    median = 1.0 if quick else e2e.MEDIAN_S
    timeout = 120 if quick else 600
    _sim_config(stack, event_drop_rate=drop_rate)
    try:
        for r in range(rounds if warmup else 0):  # each round polls as what the previous ones taught
            detection_batch(stack, warmup, median, provider, seed + 100 * r, timeout)
            time.sleep(float(e2e.STACK_ENV["VEO_POLL_STATS_TTL_SECONDS"]) + 1)  # the schedule reads what it learned
        b = detection_batch(stack, jobs, median, provider, seed + 1, timeout)
    finally:
        _sim_config(stack, event_drop_rate=0.0)
    pushes = [c for c in b["calls"] if c["kind"] == "push"]
    b.update(
        checks=sum(1 for c in b["calls"] if c["kind"] == "poll") / max(b["jobs"], 1),
        seed_checks_delay=_seed(b["durations"]) if b["durations"] else (math.nan, math.nan),
        delivered=sum(1 for c in pushes if c["status"] == 200), pushes=len(pushes),
        succeeded=b["seen"],
    )
    return b


def run(stack, counts_dir: Path, quick: bool = False, poll_only_p95: float | None = None,
        jobs: int = 40, at_once: int = 200) -> list[Figure]:
    figures: list[Figure] = []
    n, warm = (2, 0) if quick else (jobs, jobs)
    if not n:  # only the at-once figure (--jobs 0)
        return _at_once(stack, counts_dir, quick, poll_only_p95, at_once)

    def show(*new: Figure) -> None:  # as they come: a long run's first figures are not lost
        for f in new:
            print(f"figure: {f.name}: {f.value:.4g} {f.unit} (baseline {f.baseline}, met {f.met})", flush=True)
    every = scenario(stack, "gemini", n, warm, 0.0, 21, quick)
    seed_checks, seed_delay = every["seed_checks_delay"]
    delay = statistics.fmean(every["detection"]) if every["detection"] else math.nan
    learned = f"after 2 warm-up batches of {warm} jobs the schedule learned from; {every['succeeded']}/{n} seen done"
    figures += [
        Figure("2 polling", f"push (gemini webhooks, {n} jobs, every event delivered): detection delay (done -> downloading), mean",
               delay, "s", baseline=seed_delay, target="<= 1",
               note=f"baseline: the seed schedule on the same generation times (scaled x1/{e2e.TIME_SCALE:g}); "
                    f"p95 {e2e.percentile(every['detection'], 0.95):.2f} s; "
                    f"events delivered {every['delivered']}/{every['pushes']}; {learned}"),
        Figure("2 polling", f"push (gemini webhooks, {n} jobs, every event delivered): status checks per job",
               every["checks"], "checks", baseline=seed_checks, target="<= 2",
               note="provider operation calls at the simulator, the event's own check included; baseline: the seed schedule"),
    ]
    show(*figures)
    dropped = scenario(stack, "vertex", n, warm, 0.3, 31, quick)
    seed_checks, seed_delay = dropped["seed_checks_delay"]
    delay = statistics.fmean(dropped["detection"]) if dropped["detection"] else math.nan
    figures += [
        Figure("2 polling", f"push (vertex Pub/Sub, {n} jobs, 30% of events dropped): detection delay, mean",
               delay, "s", baseline=seed_delay, target="<= 0.5", target_on="ratio",
               note=f"events delivered {dropped['delivered']}/{n}, the others found by the backstop; "
                    f"{dropped['succeeded']}/{n} seen done; after 2 warm-up batches of {warm} with the same drop rate"),
        Figure("2 polling", f"push (vertex Pub/Sub, {n} jobs, 30% of events dropped): status checks per job",
               dropped["checks"], "checks", baseline=seed_checks, target="<= 1", target_on="ratio",
               note="baseline: the seed schedule on the same generation times"),
    ]
    show(*figures[-2:])
    return figures + (_at_once(stack, counts_dir, quick, poll_only_p95, at_once) if at_once else [])


def _at_once(stack, counts_dir: Path, quick: bool, poll_only_p95: float | None, at_once: int) -> list[Figure]:
    if not quick:  # as a running deployment: the backstop has learned that gemini's events arrive
        for r in range(2):
            detection_batch(stack, 20, e2e.MEDIAN_S, "gemini", 51 + r, 300)
            time.sleep(float(e2e.STACK_ENV["VEO_POLL_STATS_TTL_SECONDS"]) + 1)
    many = e2e.batch(stack, counts_dir, 6 if quick else at_once, 1.0 if quick else e2e.MEDIAN_S, "gemini", 41, 120 if quick else 420)
    ok = sum(1 for s in many["outcomes"].values() if s == "succeeded")
    return [Figure(
        "3 e2e", f"push (gemini, {many['jobs']} jobs at once): provider done -> webhook received, p95",
        e2e.percentile(many["overhead"], 0.95), "s", baseline=poll_only_p95, target="<= 1",
        note=f"p50 {e2e.percentile(many['overhead'], 0.5):.2f} s; detection mean "
             f"{statistics.fmean(many['detection']) if many['detection'] else math.nan:.2f} s; "
             f"{ok}/{many['jobs']} succeeded, after 2 warm-up batches of 20; "
             f"baseline: as many poll-only jobs (litellm-gemini) at once, same run")]


def main(argv: list[str] | None = None) -> int:
    """Only this part, on a stack of its own (the full run is bench/run.py):

        PYTHONPATH=functions:. .venv/bin/python -m bench.push_bench [--quick] [--out FILE]
    """
    import argparse
    import json
    import os
    import sys
    from datetime import datetime

    from dev.stack import DEFAULT_FUNCTIONS, LocalStack

    from .results import table, write_json
    from .run import COUNTED_FUNCTIONS, REPO, machine

    ap = argparse.ArgumentParser(description="push part of the benchmark")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "tmp" / "push-results.json")
    ap.add_argument("--jobs", type=int, default=40, help="jobs per scenario (and as many in its warm-up)")
    ap.add_argument("--at-once", type=int, default=200, help="jobs submitted at once (push, and the poll-only baseline)")
    args = ap.parse_args(argv)
    # Outside .stack/: a stack started there prunes all but its 20 newest siblings, and other
    # runs' stacks would take this one's counters from under it.
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "veo-relay-bench-push" / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    counts_dir = workdir / "counts"
    counts_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(functions_source=COUNTED_FUNCTIONS, functions=[f for f in DEFAULT_FUNCTIONS if f != "sweep_jobs"],
                       workdir=workdir, extra_env={**e2e.STACK_ENV, "VEO_BENCH_COUNTS_DIR": str(counts_dir)})
    t0 = time.monotonic()
    stack.start()
    try:
        baseline = None
        if args.at_once:  # the poll-only baseline of the at-once figure, first (as in bench/run.py: part 3, then this)
            base = e2e.batch(stack, counts_dir, 6 if args.quick else args.at_once, 1.0 if args.quick else e2e.MEDIAN_S, None, 11,
                             120 if args.quick else 420)
            baseline = e2e.percentile(base["overhead"], 0.95)
        figures = run(stack, counts_dir, args.quick, baseline, args.jobs, args.at_once)
    finally:
        stack.stop()
    write_json(args.out, figures, {"command": " ".join(["python -m bench.push_bench", *sys.argv[1:]]),
                                   "machine": machine(), "seconds": round(time.monotonic() - t0, 1)})
    print(table(figures))
    print(json.dumps({"out": str(args.out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
