"""Part 1: streaming copy of a video from the simulator into GCS, against a plain upload.

Each copy runs in a fresh process (bench/copy_once.py), so its peak RSS is its own
(its VmHWM, bench/child.py). Stream and baseline runs alternate, and the
median of each is compared, because other work on the machine shifts both.
"""
from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from veorelay.config import ProviderSettings, Settings
from veorelay.core.request import GenerationRequest
from veorelay.providers.litellm_gemini import LiteLLMGemini

from .child import run_module
from .results import Figure

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
CHUNK_BYTES = Settings.__dataclass_fields__["upload_chunk_bytes"].default  # what finalize uses


def provider_for(stack) -> LiteLLMGemini:
    env = stack.env
    return LiteLLMGemini(ProviderSettings("litellm-gemini", env["VEO_LITELLM_GEMINI_BASE_URL"],
                                          env["VEO_LITELLM_GEMINI_API_KEY"]), requests.Session())


def video_url(provider: LiteLLMGemini, size: int) -> str:
    """A finished simulator operation whose one output is `size` bytes; its download URL, as
    the poll step gets it."""
    prompt = f"bench copy #{uuid.uuid4().hex[:10]} [sim:duration=0,size={size}]"
    handle = provider.submit(uuid.uuid4().hex, GenerationRequest(prompt=prompt))
    progress = provider.check(handle)
    assert progress.state == "succeeded", progress
    return progress.outputs[0].url


def run_child(stack, args: list[str]) -> dict:
    env = {**os.environ, **stack.env, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
    result, usage = run_module("bench.copy_once", args, env)
    result.update(rss_mib=usage.peak_rss_mib, cpu_s=usage.cpu_s)
    return result


def measure(stack, size: int, pairs: int, bucket) -> dict:
    provider = provider_for(stack)
    url = video_url(provider, size)
    with tempfile.NamedTemporaryFile(suffix=".mp4") as local:
        with requests.get(url, headers={"x-goog-api-key": stack.env["VEO_LITELLM_GEMINI_API_KEY"]}, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(MIB):
                local.write(chunk)
        local.flush()
        runs = {"stream": [], "file": []}
        for n in range(pairs):
            order = ("stream", "file") if n % 2 == 0 else ("file", "stream")
            for mode in order:
                name = f"bench/copy/{uuid.uuid4().hex}.mp4"
                args = [mode, "--name", name, "--chunk", str(CHUNK_BYTES)]
                args += ["--url", url] if mode == "stream" else ["--file", local.name]
                result = run_child(stack, args)
                assert result["bytes"] == size, result
                runs[mode].append(result)
                bucket.blob(name).delete()  # the emulator keeps objects in RAM
    return runs


def sha256_cpu_per_gib(mib: int) -> float:
    """CPU seconds per GiB of hashlib.sha256 over 1 MiB pieces of warm memory, in this process."""
    piece = os.urandom(MIB)
    digest = hashlib.sha256()
    started = time.process_time()
    for _ in range(mib):
        digest.update(piece)
    return (time.process_time() - started) * 1024 / mib


def run(stack, bucket, quick: bool = False) -> list[Figure]:
    sizes = (1 * MIB, 2 * MIB) if quick else (64 * MIB, 512 * MIB)
    big = sizes[-1]
    # The emulator copies the whole object on every resumable chunk, so a 512 MiB upload's wall
    # time swings by 15 % from one run to the next for both sides alike: five pairs, medians.
    pairs = {sizes[0]: 1 if quick else 3, big: 1 if quick else 5}
    idle = run_child(stack, ["idle"])
    measured = {size: measure(stack, size, pairs[size], bucket) for size in sizes}
    figures: list[Figure] = []
    for size in sizes:
        runs = measured[size]
        label = f"{size // MIB} MiB"
        stream_s = statistics.median(r["seconds"] for r in runs["stream"])
        file_s = statistics.median(r["seconds"] for r in runs["file"])
        figures.append(Figure(
            "1 copy", f"throughput, {label} sim->GCS (finalize path) vs upload of a local file", size / MIB / stream_s, "MiB/s",
            baseline=size / MIB / file_s, target=">= 0.95" if size == big else None, target_on="ratio",
            note=f"median of {len(runs['stream'])}; stream runs {[round(r['seconds'], 2) for r in runs['stream']]} s, "
                 f"file runs {[round(r['seconds'], 2) for r in runs['file']]} s; chunk {CHUNK_BYTES // MIB} MiB"))
        figures.append(Figure(
            "1 copy", f"CPU of the copying process, {label}", statistics.median(r["cpu_s"] for r in runs["stream"]) / (size / 1024 / MIB),
            "CPU s/GiB", baseline=statistics.median(r["cpu_s"] for r in runs["file"]) / (size / 1024 / MIB),
            target="<= 1.15" if size == big else None, target_on="ratio",
            note="user+sys of the child, start-up included; baseline: the file upload"))
    # What each further GiB costs, start-up (imports, clients: the same for both) left out.
    cpu = {(size, mode): statistics.median(r["cpu_s"] for r in measured[size][mode]) for size in sizes for mode in ("stream", "file")}
    gib_between = (big - sizes[0]) / 1024 / MIB
    per_gib = {mode: (cpu[big, mode] - cpu[sizes[0], mode]) / gib_between for mode in ("stream", "file")}
    figures.append(Figure(
        "1 copy", f"CPU per further GiB ({sizes[0] // MIB} -> {big // MIB} MiB), start-up left out", per_gib["stream"], "CPU s/GiB",
        baseline=per_gib["file"], note="(CPU at the large size - CPU at the small one) / the GiB between; baseline: the file upload"))
    hashed = sha256_cpu_per_gib(16 if quick else 256)
    figures.append(Figure(
        "1 copy", "  what VEO_OUTPUT_SHA256=true would add: sha256 (hashlib, this CPU)", hashed, "CPU s/GiB",
        baseline=per_gib["file"],
        note="not in the default copy, whose integrity check is the CRC32C the upload sends and the bucket verifies "
             "(a plain upload computes it too); the opt-in sha256 adds this per GiB, about half the upload's own CPU"))
    rss = {size: max(r["rss_mib"] for r in measured[size]["stream"]) for size in sizes}
    for size in sizes:
        figures.append(Figure("1 copy", f"peak RSS of the copying process, {size // MIB} MiB", rss[size], "MiB",
                              baseline=idle["rss_mib"], target="<= 150",
                              note="baseline: a process that only imports and builds its clients"))
    small = sizes[0]
    figures.append(Figure("1 copy", f"peak RSS {big // MIB} MiB vs {small // MIB} MiB", rss[big], "MiB", baseline=rss[small],
                          ratio=max(rss[big], rss[small]) / min(rss[big], rss[small]), target="<= 1.10", target_on="ratio",
                          note="ratio = larger / smaller peak: within 10 % either way"))
    return figures
