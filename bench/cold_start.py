"""Cold start: each entry point's import time and peak RSS, beside a baseline process.

Cloud Functions loads functions/main.py for every function, each with its own entry point. For
each entry point a fresh process (bench/cold_once.py) imports main and makes the entry point's
first request (refused at the edge, 401: what runs is the import and the clients' building);
its baseline is a fresh process that imports functions-framework and the Google clients the
same entry point uses (veorelay/runtime.py CLIENTS: Firestore, Cloud Tasks, Cloud Storage),
builds them and makes the same stand-in request (flask's test context: the harness's cost, on
both sides). Runs alternate (entry, baseline, baseline, entry, ...); the ratio is the median of
the pairs' ratios (paired_ratio). Peak RSS is the child's own high-water mark (VmHWM,
bench/child.py). Needs no stack: clients are built, never called.

The entry points run from a compiled copy of functions/, as a deployed function does: Cloud
Functions' Python buildpack compiles the uploaded source (`python3 -m compileall -f -q .`,
github.com/GoogleCloudPlatform/buildpacks, cmd/python/functions_framework/lib/lib.go), so an
instance imports veo-relay's modules from bytecode as it does its libraries (pip compiles
those). Run from the work tree under PYTHONDONTWRITEBYTECODE, every process would compile
veo-relay from source instead, a cost no instance pays.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from veorelay.runtime import CLIENTS

from .child import run_module
from .results import Figure

REPO = Path(__file__).resolve().parents[1]
TARGET = "<= 1.25"


def google_clients(entry: str) -> list[str]:
    """The Google client libraries an entry point's runtime builds (the baseline imports these)."""
    uses = set(CLIENTS[entry])
    return [lib for lib, fields in (("firestore", {"store", "durations"}), ("tasks", {"scheduler"}), ("storage", {"bucket"}))
            if uses & fields]


def built_functions(into: Path) -> Path:
    """A copy of functions/ compiled as the buildpack compiles it (module docstring)."""
    built = into / "functions"
    shutil.copytree(REPO / "functions", built, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-f", "-q", str(built)], check=True)
    return built


def child_env(entry: str, functions_dir: Path = REPO / "functions") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEO_") and not k.endswith("_EMULATOR_HOST")}
    env.update({
        "PYTHONPATH": f"{functions_dir}{os.pathsep}{REPO}", "GOOGLE_CLOUD_PROJECT": "veo-relay-bench",
        "VEO_BUCKET": "veo-relay-bench-videos",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:9",
        "VEO_TASKS_SERVICE_ACCOUNT": "invoker@veo-relay-bench.iam.gserviceaccount.com",
        f"VEO_{entry.upper()}_URL": f"https://{entry.replace('_', '-')}.example.invalid/",
    })
    return env


def run_child(args: list[str], env: dict[str, str]) -> dict:
    result, usage = run_module("bench.cold_once", args, env)
    result.update(rss_mib=usage.peak_rss_mib)
    return result


def measure(entry: str, pairs: int, functions_dir: Path, warm_up: bool = True) -> dict[str, list[dict]]:
    env = child_env(entry, functions_dir)
    runs: dict[str, list[dict]] = {"entry": [], "baseline": []}
    base_args = ["baseline", entry, ",".join(google_clients(entry))]
    if warm_up:  # unmeasured: the first process reads the files into the page cache
        run_child(["entry", entry], env)
    for n in range(pairs):
        for mode in (("entry", "baseline") if n % 2 == 0 else ("baseline", "entry")):
            runs[mode].append(run_child(["entry", entry] if mode == "entry" else base_args, env))
    return runs


def paired_ratio(runs: dict[str, list[dict]], key: str) -> float:
    """The median of entry/baseline over the pairs measured back to back: this machine's speed
    drifts by more than half over minutes (a baseline read 0.42 s, then 0.78 s), and a pair
    shares its moment where two medians taken over the whole run do not."""
    return statistics.median(e[key] / b[key] for e, b in zip(runs["entry"], runs["baseline"], strict=True))


ENTRIES = ("api", "submit_job", "poll_job", "stream_job", "finalize_job", "deliver_webhook", "on_request_object",
           "sweep_jobs", "provider_events")


def run(quick: bool = False, say: Callable[[str], None] = print) -> list[Figure]:
    entries = ("poll_job",) if quick else tuple(e for e in ENTRIES if e in CLIENTS)
    pairs = 1 if quick else 9  # the ratios move by about 0.2 from run to run at 5: nine pairs, medians
    figures: list[Figure] = []
    say(f"part 5: cold starts of {len(entries)} entry points (fresh processes, clients built and never called)")
    with tempfile.TemporaryDirectory(prefix="veo-cold-") as tmp:
        built = built_functions(Path(tmp))
        measured = {entry: measure(entry, pairs, built, warm_up=not quick) for entry in entries}
    for entry, runs in measured.items():
        statuses = sorted({r["status"] for r in runs["entry"]})
        libs = "+".join(google_clients(entry)) or "none"
        med = {mode: {key: statistics.median(r[key] for r in rs) for key in ("seconds", "cpu_s", "rss_mib")}
               for mode, rs in runs.items()}
        paired = {key: paired_ratio(runs, key) for key in ("cpu_s", "rss_mib")}
        schema = [r["schema_cpu_s"] for r in runs["entry"] if "schema_cpu_s" in r]
        later = (f"; its first request that carries a job request then loads the request schema (pydantic) "
                 f"once: +{statistics.median(schema):.2f} s" if schema else "")
        figures.append(Figure(
            "5 cold start", f"{entry}: import main + first request (its runtime built), CPU time", med["entry"]["cpu_s"], "s",
            baseline=med["baseline"]["cpu_s"], ratio=paired["cpu_s"], target=TARGET, target_on="ratio",
            note=f"medians of {pairs} pairs, ratio the median of the pairs' ratios; "
                 f"baseline: functions-framework + {libs} imported and built; wall time "
                 f"{med['entry']['seconds']:.2f} s vs {med['baseline']['seconds']:.2f} s; answer {', '.join(statuses)} "
                 f"(no token: refused at the edge){later}; functions/ compiled as the buildpack compiles it"))
        figures.append(Figure(
            "5 cold start", f"{entry}: peak RSS", med["entry"]["rss_mib"], "MiB", baseline=med["baseline"]["rss_mib"],
            ratio=paired["rss_mib"], target=TARGET, target_on="ratio", note=f"VmHWM of each fresh process; baseline as above ({libs})"))
    return figures
