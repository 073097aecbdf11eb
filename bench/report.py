"""docs/BENCHMARKS.md: the latest full run's table, the machine, the command, the method."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .results import Figure, table

METHOD = """\
## How each part is measured

1. **Streaming copy** (`bench/copy_bench.py`, `bench/copy_once.py`). A simulator operation serves
   one video of the given size; a fresh process copies it into the GCS emulator through
   finalize's code path (the provider's `open_output()` and `sink.store_video()`: download,
   MP4 and length checks, upload with the CRC32C the bucket verifies; no sha256, as a deployment
   runs by default). The baseline is
   `Blob.upload_from_filename()` of the same bytes from a local file, same client, same chunk
   size (`upload_chunk_bytes`). Runs alternate (stream, file, file, stream, ...) and the medians
   are compared. Peak RSS is the child's own VmHWM (`bench/child.py`: wait4's
   `ru_maxrss` would carry the parent's across exec); its baseline is a process
   that only imports and builds its clients. The GCS emulator (fake-gcs-server, in memory)
   appends resumable chunks by copying, so large uploads are slow here for both sides alike:
   absolute MiB/s say little about Google Cloud, the ratio is what counts. CPU is the child's
   user+sys: per GiB with start-up included (the row with the target), per further GiB between
   the two sizes (start-up left out), and what the opt-in sha256 (`VEO_OUTPUT_SHA256`) would add.
2. **Polling** (`bench/polling_sim.py`). Simulated clock: generation times are drawn from each
   spread, the seed-000 schedule and veo-relay's are replayed against the same times. veo-relay
   starts from its documented prior and learns as in production: each finished job adds its
   interval (last check, detecting check] to the histogram, and the plan is recomputed every 20
   jobs (the instance cache). The push row is measured on the stack: genaipro jobs through
   `stream_job`, counting poll invocations and the delay from the simulator's done time to the
   job's `downloading` timestamp.
3. **End to end** (`bench/e2e.py`). Jobs are POSTed together; each names its own webhook and a
   generation time; the run ends when every terminal webhook has arrived. The stack's
   functions are served through `bench/stack_functions/counted_main.py`, which counts, in each
   function process, invocations and their wall time, Firestore document reads (each document a
   get or query returns) and writes (each document in a commit), and GCS requests by class.
   Provider calls are counted by the simulator. Times are production's scaled down 7.5x (the
   generation times and every poll setting), so the run takes a minute, not ten.
4. **Cost** (`bench/cost.py`). Part 3's counts per job times public list prices (stated in the
   script), per 1,000 jobs, next to Veo's own price for the same videos.
5. **Cold start** (`bench/cold_start.py`, `bench/cold_once.py`; no stack). Per entry point, a
   fresh process does what a Cloud Functions instance does before its first answer: imports
   `functions/main.py` and calls the entry point, which imports its own modules and builds the
   clients it uses (`veorelay/runtime.py` `CLIENTS`); the call carries no token and is refused
   at the edge (401), so nothing is sent anywhere. Its baseline is a fresh process that imports
   functions-framework and the same Google clients (Firestore, Cloud Tasks, Cloud Storage, as
   that entry point uses them), builds them and makes the same stand-in request (flask's test
   request context, about 10 ms: the harness's cost, on both sides). Time is from the first
   import to the built clients (the interpreter's own start is the same for both), as the
   process's CPU time: an import is CPU-bound, and on a machine shared with other work wall
   time measures the neighbours (it is in the note); peak RSS is the child's VmHWM. One
   unmeasured run first compiles what has no bytecode yet; then runs alternate (entry,
   baseline, baseline, entry, ...) and the ratio is the median of the nine pairs' ratios (the
   value and baseline columns are the medians of each side). For api and on_request_object,
   whose refused first call loads no request schema, the note gives what their first request
   that carries a job request adds once per instance (importing the schema: pydantic).

## Reading the results

- **Invocations.** The target "3 + polls" is checked on what veo-relay runs by itself: submit,
  finalize and one webhook besides the polls. The client's own `POST /jobs` is listed in "all".
  The bench's jobs ask for `job.succeeded`/`job.failed` only; a job that keeps the default
  events also gets `job.running`: one more webhook invocation and one more Firestore write
  (its delivery record), i.e. 4 + polls and 10 writes.
- **Polls on the stack vs the simulated clock.** Part 3 submits 200 jobs within a minute, so
  most are planned from the prior (learning needs finished jobs and a cache refresh), and its
  shortest gap is 0.5 s rather than 2 s / 7.5: it makes more checks per job than part 2's
  steady state. Part 2 is the measure of the schedule; part 3 of the plumbing.
- **Emulator limits.** fake-gcs-server copies the whole object on every resumable chunk
  (quadratic in the size: 512 MiB take ~45 s for the plain upload too), and it does not enforce
  `ifGenerationMatch=0` on resumable uploads (Cloud Storage does; the create-only behaviour is
  covered by the code path, not by this emulator). The Firestore emulator and the simulator run
  on the same two cores as everything else.
- **Function time** in the cost is an upper bound (each request billed its own wall time).
- **Where the copy's CPU goes.** The copy measured 1.40x a plain upload's CPU (512 MiB, start-up
  included). Instruction counts (valgrind's callgrind) had shown that, beyond sha256, the copy
  executed only 0.6 % more user-space work than the upload; what they cannot see is the kernel.
  `perf record` of a 512 MiB copy showed 17 % of its CPU in `clear_page_erms`, the kernel zeroing
  fresh pages under `recv`, and the plain upload none: the read-ahead thread kept three 8 MiB
  blocks alive at once, so the allocator handed pages back and took new ones for every block
  (a 128 MiB copy took 16,400 minor page faults against the upload's 8,190). Measured on the
  copy alone (min of 5, 128 MiB, CPU s): plain upload 0.111; the copy as it was 0.240; without
  sha256 0.157; without sha256 and without the read-ahead thread 0.110; the thread moved to the
  upload side instead 0.144. With the simulator throttled to 40 MB/s (`perf`-free wall clock,
  median of 3): sequential 4.54 s, read-ahead thread 4.89 s, upload thread 4.49 s for 128 MiB:
  while a chunk is sent the kernel's socket buffer keeps receiving, so the thread bought no
  throughput. Hence the copy reads a block and uploads it in one thread, and its integrity
  check is the CRC32C the client library sends with the last chunk (the plain upload computes
  it too; Cloud Storage refuses a mismatch, docs.cloud.google.com/storage/docs/data-validation).
  A sha256 (about 0.6 CPU s/GiB with SHA-NI, half the upload's own CPU) is computed only where a
  deployment sets `VEO_OUTPUT_SHA256=true`; every output records Cloud Storage's `crc32c` and
  `md5`, the hashes `gcloud storage` and the client libraries check downloads against.
- **Where a cold start's time goes** (`python -X importtime`, each entry point's first request).
  Each entry point imports and builds only what its requests use: `poll_job` and `stream_job`
  no Cloud Storage, `deliver_webhook` and `provider_events` no provider; settings are read
  without pydantic (config.py reads a valid environment itself, vouching only for values
  pydantic reads identically; anything else, every refusal included, goes to the
  pydantic-settings model, built then, so its messages are unchanged); dialects import their
  parsers (ijson, sseclient) when they first read an answer; PyAV and Pillow are imported where
  a video is probed or an image decoded (the first real finalize pays about +64 ms CPU and
  +17 MiB, `import av` alone 90-100 ms); api routes import their own steps (a first POST /jobs
  +30 ms). `tests/unit/test_cold_start.py` locks each of these in.
  The entry points are measured from a copy of functions/ compiled as Cloud Functions' Python
  buildpack compiles the uploaded source (`python3 -m compileall -f -q .`,
  GoogleCloudPlatform/buildpacks `cmd/python/functions_framework/lib/lib.go`): before, with
  `PYTHONDONTWRITEBYTECODE=1` set on the machine, every process compiled veo-relay from source
  while the baseline's libraries came compiled (0.1-0.4 of the ratio). `submit_job` and
  `stream_job` validated the stored request with pydantic again before sending it (pydantic's
  import and the request models' schemas: about 0.13 CPU s, a quarter of their baseline); they
  now read it back from the job record as plain dataclasses (`core/accepted.py`: the record was
  validated when the job was accepted), and import no pydantic (measured after the baseline's
  own imports in one process: submit_job's own cost fell from about 0.22 to 0.09-0.15 CPU s).
  `on_request_object` hears of every object finalized in the bucket (Eventarc filters by
  bucket, not prefix), so most of its invocations are for veo-relay's own videos, posters and
  results; it imported the request schema (pydantic, about 0.1 CPU s) for each cold instance
  before even checking the caller. It now checks the caller first and imports the schema only
  for an event about a request object, as the api does for a POST /jobs (the note gives that
  first validation's cost: +0.09-0.10 s, once per instance). `provider_events` imported the
  poll step (and through it the dialects' base types, the webhook sender, the poll plan's
  classes) for two one-line helpers; those now live with the job and push-event types in core
  (`core/job.py seconds_running`, `core/push_events.py expects_push`), and its own cost after the
  baseline's imports fell from about 0.086 to 0.053 CPU s, 35 to 22 dataclass definitions.
  Dataclass definitions are the largest single item left (about 1 ms each, 40 % of what
  veo-relay's own modules cost an entry point), then the catalog's TOML (8 ms for the six
  files), the providers built.
  Measurement: on this shared machine the same baseline read 0.42 CPU s and, minutes later,
  0.78; ratios of the two sides' medians moved by 0.2-0.4 run to run (0.79-1.42 for one entry
  point), the medians of back-to-back pairs' ratios by about 0.1, hence pairs.
- **How close polling can get.** The check budget binds on Veo's spreads, and the optimum's
  checks grow in jumps (half a check at spread a), so a single schedule that fits the budget
  leaves part of it unspent. The plan therefore mixes the two optima around the budget: a fixed
  share of jobs (by a hash of the job id, the same on every step) follows the one above, the
  rest the one below, and a job spends the budget on average (the lower convex hull of what
  single schedules reach). The polling row's note gives the floor: spread a known exactly and
  the seed's expected checks spent in full, the planner's mean delay is about 0.245 of the
  seed's; no schedule that learns only "still running" from a check does much better at that
  cost. veo-relay learns the spread and keeps 2 % of the budget in hand (so that real jobs'
  checks stay under the seed's), so its figure lands at about 0.25-0.26.
  Most of the distance from the floor is the draw, not the schedule. The note replays that
  known-spread optimum on the figure's own 2000 jobs: 0.258 at 0.978x the seed's checks, the
  same as veo-relay's learned schedule on them (0.258 at 0.987x), so on this draw no plan that
  learns only "still running" reaches the quarter at the seed's checks. Replayed on draws 1-12
  the same optimum reads 0.232-0.258 (pooled, 24,000 jobs: 0.247 at 0.994x); one draw cannot
  tell 0.246 from 0.25. veo-relay on the same twelve draws, learning from the prior in each:
  0.256 pooled at 0.976x the checks. Where the 0.009 goes (each job's plan scored exactly on the
  true spread, ten draws): the first 250 jobs, planned on a young histogram, score 0.28-0.30
  (about 0.004 of the total); the 2 % of the budget kept in hand about 0.005 (without it: 0.250
  pooled at 0.997x, but four of the twelve draws then spend more checks than the seed, up to
  1.014x, so the margin stays); learning from "ended between its last two checks" instead of
  exact durations about 0.002 (0.2550 against 0.2534). A pure lognormal fit of the learned
  histogram or more smoothing did not recover any of it (0.254-0.257). The quarter is at the
  floor of schedules that learn only "still running"; going under it needs more than that from
  a check (a provider's progress, where it reports one: neither the seed documents of the
  dialects that poll, newapi, flow and the litellm pass-through, nor Google's operations do).
"""


def main(argv: list[str] | None = None) -> int:
    """Re-render the report from a results file: python -m bench.report [results.json] [out.md]"""
    import json
    import sys

    argv = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[1]
    results = Path(argv[0]) if argv else root / "bench" / "results.json"
    out = Path(argv[1]) if len(argv) > 1 else root / "docs" / "BENCHMARKS.md"
    data = json.loads(results.read_text())
    figures = [Figure(f["part"], f["name"], f["value"], f["unit"], f["baseline"], f["ratio"], f["target"],
                      f.get("target_on", "value"), f["met"], f.get("note", "")) for f in data["figures"]]
    write(out, figures, data["meta"])
    return 0


def write(path: Path, figures: Iterable[Figure], meta: dict[str, Any]) -> None:
    figures = list(figures)
    m = meta["machine"]
    notes = "\n".join(f"- **{f.part} / {f.name.strip()}**: {f.note}" for f in figures if f.note)
    missed = [f for f in figures if f.met is False]
    verdict = ("Every target was met." if not missed else
               "Missed: " + "; ".join(f"{f.name.strip()} ({f.value:.3g} {f.unit})" for f in missed) + ".")
    text = f"""# Benchmarks

Generated by `make bench` (`{meta['command']}`) on {meta['started']}, commit `{m['commit']}`,
in {meta['seconds']:.0f} s. Every figure, with its baseline, ratio, target and verdict, is also in
`bench/results.json`. `met` checks the ratio when the target column says `ratio`, else the value.

Machine: {m['cpu'] or 'unknown CPU'}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['os']},
Python {m['python']}; load average {m['load_average_at_start']} at the start. A shared virtual machine:
its speed moves from run to run (other tenants), which is why every speed is a ratio to a baseline
run alongside; latencies on the stack (part 3's percentiles) have no such baseline and move most.

{verdict}
{f"{chr(10)}{meta['note']}{chr(10)}" if meta.get('note') else ''}
{table(figures, markdown=True)}

## Notes on the figures

{notes}

{METHOD}"""
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
