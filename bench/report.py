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
   MP4 and length checks, sha256, upload, sha256 recorded on the object). The baseline is
   `Blob.upload_from_filename()` of the same bytes from a local file, same client, same chunk
   size (`upload_chunk_bytes`). Runs alternate (stream, file, file, stream, ...) and the medians
   are compared. Peak RSS is the child's `ru_maxrss` (`os.wait4`); its baseline is a process
   that only imports and builds its clients. The GCS emulator (fake-gcs-server, in memory)
   appends resumable chunks by copying, so large uploads are slow here for both sides alike:
   absolute MiB/s say little about Google Cloud, the ratio is what counts.
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

## Reading the results

- **Invocations.** The target "3 + polls" is checked on what veo-relay runs by itself: submit,
  finalize and one webhook besides the polls. The client's own `POST /jobs` is listed in "all".
  The bench's jobs ask for `job.succeeded`/`job.failed` only; a job that keeps the default
  events also gets `job.running`: one more webhook invocation and one more Firestore write
  (its delivery record), i.e. 4 + polls and 8 writes.
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
Python {m['python']}; load average {m['load_average_at_start']} at the start (other test suites
were running: timings are noisy, which is why every speed is a ratio to a baseline run alongside).

{verdict}

{table(figures, markdown=True)}

## Notes on the figures

{notes}

{METHOD}"""
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
