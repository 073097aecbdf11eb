"""Part 3: many jobs at once through the whole local stack, counted at every layer.

Jobs are submitted together through POST /jobs, each with its own simulated generation
time and webhook URL. The run ends when every job's terminal webhook has arrived. Counts
come from the functions (bench/stack_functions/counting.py: invocations, Firestore reads and
writes, GCS operations) and from the simulator's call log (provider calls).

Times are the production schedule scaled down by TIME_SCALE: generation takes seconds,
not minutes, and every poll setting is divided by the same factor, so the polling
behaves as it would in production, only faster.
"""
from __future__ import annotations

import json
import math
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from veorelay.config import PollSettings

from .results import Figure

TIME_SCALE = 7.5
MEDIAN_S = 75.0 / TIME_SCALE  # spread (a) of part 2, scaled: lognormal, sigma 0.3
SIGMA = 0.3
_P = PollSettings()
STACK_ENV = {
    "VEO_POLL_PRIOR_MEDIAN_SECONDS": f"{60.0 / TIME_SCALE:g}",
    "VEO_POLL_INITIAL_DELAY_SECONDS": f"{_P.initial_delay_s / TIME_SCALE:g}",
    "VEO_POLL_MIN_DELAY_SECONDS": "0.5",  # 2 s / 7.5 would be shorter than a Cloud Tasks round trip here
    "VEO_POLL_MAX_DELAY_SECONDS": f"{_P.max_delay_s / TIME_SCALE:g}",
    "VEO_POLL_DELAY_COST_CHECKS": f"{_P.delay_cost_checks * TIME_SCALE:g}",  # checks per (scaled) second
    "VEO_POLL_STATS_TTL_SECONDS": "10",
}
EVENTS = ["job.succeeded", "job.failed"]  # a client that only waits for the result


def api_headers(stack) -> dict[str, str]:
    """Authorization for the public API: the stack's dev key (client "demo")."""
    key = getattr(stack, "api_key", None)
    return {"Authorization": f"Bearer {key}"} if key else {}


def read_counts(folder: Path) -> dict[str, dict[str, float]]:
    """{function target: summed counters} over every process's file."""
    totals: dict[str, dict[str, float]] = {}
    for path in folder.glob("*.json"):
        target = path.stem.rsplit("-", 1)[0]
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        bucket = totals.setdefault(target, {})
        for key, value in data.items():
            bucket[key] = bucket.get(key, 0) + value
    return totals


def counts_delta(before: dict, after: dict) -> dict[str, dict[str, float]]:
    return {t: {k: v - before.get(t, {}).get(k, 0) for k, v in c.items()} for t, c in after.items()}


def settle(folder: Path, quiet_s: float = 2.0, timeout_s: float = 30.0) -> dict:
    """Counters once nothing has changed for quiet_s (trailing tasks have finished)."""
    deadline = time.monotonic() + timeout_s
    last = read_counts(folder)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = read_counts(folder)
        if now == last:
            return now
        last = now
    return last


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return math.nan
    k = (len(values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def batch(stack, counts_dir: Path, jobs: int, median_s: float, provider: str | None, seed: int, timeout_s: float) -> dict[str, Any]:
    """Submit `jobs` jobs at once and wait for every terminal webhook; what happened, raw."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]
    api = stack.function_urls["api"].rstrip("/")
    receiver = stack.webhook_receiver_url.rstrip("/")
    sim = stack.simulator_url.rstrip("/")
    headers = api_headers(stack)
    prompts = [f"bench e2e {tag} #{i:04d} [sim:duration={rng.lognormvariate(math.log(median_s), SIGMA):.2f}]" for i in range(jobs)]
    before = settle(counts_dir, quiet_s=0.5, timeout_s=5)

    def submit(i: int) -> str:
        body = {"prompt": prompts[i], "webhook_url": f"{receiver}/bench/{tag}/{i:04d}", "webhook_events": EVENTS}
        if provider:
            body["provider"] = provider
        resp = requests.post(f"{api}/jobs", json=body, headers=headers, timeout=60)
        if resp.status_code == 400 and "webhook_events" in resp.text:  # an API without event selection
            body.pop("webhook_events")
            resp = requests.post(f"{api}/jobs", json=body, headers=headers, timeout=60)
        if resp.status_code >= 300:
            raise RuntimeError(f"POST /jobs answered {resp.status_code}: {resp.text[:500]}")
        return resp.json()["id"]

    started = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(submit, range(jobs)))
    submitted = time.time()

    deadline = time.monotonic() + timeout_s
    terminal: list[tuple[dict, dict]] = []
    while time.monotonic() < deadline:
        received = requests.get(f"{receiver}/_received", timeout=30).json()
        terminal = [(h, e) for h in received if h["path"].startswith(f"/bench/{tag}/")
                    for e in [json.loads(h["body"])] if e.get("type") in TERMINAL_EVENTS]
        if len({h["path"] for h, _ in terminal}) >= jobs:
            break
        time.sleep(1)
    after = settle(counts_dir)

    ops = [op for op in requests.get(f"{sim}/_sim/operations", params={"hash": "0"}, timeout=60).json() if tag in (op.get("prompt") or "")]
    done_at = {op["prompt"]: op["created_at"] + op["duration"] for op in ops}
    calls = [c for c in requests.get(f"{sim}/_sim/calls", timeout=60).json() if tag in (c.get("prompt") or "")]
    outcomes: dict[str, str] = {}
    overhead, detection, after_detection, last_received = [], [], [], 0.0
    for hook, event in terminal:
        data = event["data"]
        outcomes[data["id"]] = data["status"]
        last_received = max(last_received, hook["received_at"])
        done = done_at.get(data["request"]["prompt"])
        downloading = (data.get("timestamps") or {}).get("downloading")
        if done is None or downloading is None:
            continue
        downloading_at = datetime.fromisoformat(downloading.replace("Z", "+00:00")).timestamp()
        overhead.append(hook["received_at"] - done)
        detection.append(downloading_at - done)
        after_detection.append(hook["received_at"] - downloading_at)
    return {"jobs": jobs, "outcomes": outcomes, "started": started, "submitted": submitted,
            "last_received": last_received or time.time(), "delta": counts_delta(before, after), "calls": calls,
            "overhead": overhead, "detection": detection, "after_detection": after_detection, "median_s": median_s}


TERMINAL_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


def run(stack, counts_dir: Path, quick: bool = False) -> tuple[list[Figure], dict[str, Any]]:
    b = batch(stack, counts_dir, 6 if quick else 200, 1.0 if quick else MEDIAN_S, None, 11, 120 if quick else 900)
    jobs, delta, calls = b["jobs"], b["delta"], b["calls"]
    succeeded = sum(1 for s in b["outcomes"].values() if s == "succeeded")
    span_s = b["last_received"] - b["started"]
    per_job = lambda total: total / jobs  # noqa: E731
    fn = lambda target, key: delta.get(target, {}).get(key, 0.0)  # noqa: E731
    total = lambda key: sum(c.get(key, 0.0) for c in delta.values())  # noqa: E731
    polls = per_job(fn("poll_job", "invocations"))
    api_calls = per_job(fn("api", "invocations"))
    invocations = per_job(total("invocations"))
    kinds = {k: per_job(sum(1 for c in calls if c["kind"] == k)) for k in ("submit", "poll", "download")}
    overhead, detection, after_detection = b["overhead"], b["detection"], b["after_detection"]
    scale = f"generation lognormal median {b['median_s']:g} s sigma {SIGMA}; poll settings / {TIME_SCALE:g}"

    figures = [
        Figure("3 e2e", f"jobs succeeded ({jobs} submitted at once)", succeeded / jobs, "fraction", target=">= 1",
               note=f"{succeeded} of {jobs}; outcomes {sorted(set(b['outcomes'].values()))}; "
                    f"no terminal webhook {jobs - len(b['outcomes'])}"),
        Figure("3 e2e", "throughput", jobs / span_s * 60, "jobs/min",
               note=f"first POST to last webhook {span_s:.1f} s (the POSTs took {b['submitted'] - b['started']:.1f} s; "
                    f"veo-submit-litellm-gemini dispatches 5/s, the provider quota); {scale}"),
        Figure("3 e2e", "overhead provider done -> webhook received, p50", percentile(overhead, 0.5), "s"),
        Figure("3 e2e", "overhead provider done -> webhook received, p95", percentile(overhead, 0.95), "s"),
        Figure("3 e2e", "  of which detection (done -> job downloading), mean", statistics.fmean(detection) if detection else math.nan, "s",
               note=f"p95 {percentile(detection, 0.95):.2f} s, in scaled time (x{TIME_SCALE:g} for production seconds)"),
        Figure("3 e2e", "  of which downloading -> webhook received, p50", percentile(after_detection, 0.5), "s",
               note=f"p95 {percentile(after_detection, 0.95):.2f} s"),
        Figure("3 e2e", "Firestore writes per job", per_job(total("firestore_writes")), "writes", target="<= 9",
               note="counted in the functions' Firestore client: one per document in a commit (the target was 8 until "
                    "spend control added the month's usage ledger, one increment per settled job); by collection: " + ", ".join(
                   f"{key.split(' ', 1)[1]} {per_job(total(key)):.2f}" for key in sorted(
                       {k for c in delta.values() for k in c if k.startswith("firestore_writes ")}))),
        Figure("3 e2e", "Firestore reads per job", per_job(total("firestore_reads")), "reads",
               note="one per document a get or query returns, found or missing"),
        Figure("3 e2e", "function invocations per job, all", invocations, "invocations",
               note=", ".join(f"{t} {per_job(c.get('invocations', 0)):.2f}" for t, c in sorted(delta.items()) if c.get("invocations"))),
        Figure("3 e2e", "poll invocations per job", polls, "invocations"),
        # From the counts, not the per-job means: 2003/200 - 1203/200 - 1 is 3.000000000000001 (over "<= 3").
        Figure("3 e2e", "invocations per job besides polls and POST /jobs",
               per_job(total("invocations") - fn("poll_job", "invocations") - fn("api", "invocations")), "invocations",
               target="<= 3", note="submit + finalize + one webhook (retries would show here); POST /jobs is the client's own call"),
        Figure("3 e2e", "provider calls per job (at the simulator)", per_job(len(calls)), "calls",
               note=", ".join(f"{k} {v:.2f}" for k, v in kinds.items())),
        Figure("3 e2e", "GCS operations per job, class A", per_job(total("gcs_class_a")), "ops",
               note=f"class B {per_job(total('gcs_class_b')):.2f}"),
    ]

    push = batch(stack, counts_dir, 2 if quick else 20, 1.0 if quick else MEDIAN_S, "genaipro", 12, 120 if quick else 300)
    pj = push["jobs"]
    figures += [
        Figure("2 polling", f"push provider (genaipro SSE, {pj} jobs on the stack): status checks per job",
               push["delta"].get("poll_job", {}).get("invocations", 0.0) / pj, "checks", target="<= 0",
               note=f"provider calls besides submit and download: "
                    f"{sum(1 for c in push['calls'] if c['kind'] not in ('submit', 'download', 'stream', 'blob')) / pj:.2f}/job; "
                    f"succeeded {sum(1 for s in push['outcomes'].values() if s == 'succeeded')}/{pj}"),
        Figure("2 polling", "push provider: detection delay (done -> job downloading), mean",
               statistics.fmean(push["detection"]) if push["detection"] else math.nan, "s",
               note="the complete event arrives when the provider is done; what is left is the event's way in"),
    ]
    usage = {
        "jobs": jobs,
        "per_job": {t: {k: per_job(v) for k, v in c.items()} for t, c in delta.items()},
        "firestore_reads": per_job(total("firestore_reads")),
        "firestore_writes": per_job(total("firestore_writes")),
        "gcs_class_a": per_job(total("gcs_class_a")),
        "gcs_class_b": per_job(total("gcs_class_b")),
        "invocations": invocations,
        "task_invocations": invocations - api_calls,
        "polls": polls,
    }
    return figures, usage
