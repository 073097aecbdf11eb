"""Peak RSS of finalize's path for one output: the streamed copy (gcp/sink.py), the read-back of
the stored object (gcp/media_probe.py: PyAV through a BlobReader) and the poster (first
keyframe decoded, JPEG, stored), in a fresh process per run, against the local stack.

    PYTHONPATH=functions:. .venv/bin/python -m bench.finalize_rss            # starts a local stack
    PYTHONPATH=functions:. .venv/bin/python -m bench.finalize_rss child --url URL --name N [--copy-only]

Prints one JSON line per case: {"case", "bytes", "rss_mib", "copy_only_rss_mib", "seconds", "media", "poster_bytes"}.
The finalize function has 1 GiB (infra/main.tf, finalize-job memory) and runs 4 requests at once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

from .child import run_module

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def child(args: argparse.Namespace) -> int:
    import requests
    from google.cloud import storage

    from veorelay.config import ProviderSettings, Settings
    from veorelay.gcp import media_probe, sink
    from veorelay.providers.base import OutputRef
    from veorelay.providers.litellm_gemini import LiteLLMGemini

    chunk = Settings.__dataclass_fields__["upload_chunk_bytes"].default  # what finalize uses
    bucket = storage.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"]).bucket(os.environ["VEO_BUCKET"])
    provider = LiteLLMGemini(ProviderSettings("litellm-gemini", os.environ["VEO_LITELLM_GEMINI_BASE_URL"],
                                              os.environ["VEO_LITELLM_GEMINI_API_KEY"]), requests.Session())
    started = time.perf_counter()
    stored = sink.store_video(provider.open_output(OutputRef(0, url=args.url)), bucket, args.name, {"bench": "1"}, chunk)
    result: dict = {"bytes": stored.size}
    if not args.copy_only:
        inspection = media_probe.inspect_stored(bucket, args.name, with_poster=True)
        poster = media_probe.store_poster(bucket, args.name.replace(".mp4", ".jpg"), inspection.poster_jpeg or b"", {"bench": "1"})
        result.update(probe=inspection.probe.__dict__, poster_bytes=poster["size"], bytes_read=inspection.bytes_read)
    result["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result), flush=True)
    return 0


def run_child(env: dict, args: list[str]) -> dict:
    result, usage = run_module("bench.finalize_rss", ["child", *args], env)
    result["rss_mib"] = round(usage.peak_rss_mib, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="bench", choices=["bench", "child"])
    ap.add_argument("--url")
    ap.add_argument("--name")
    ap.add_argument("--copy-only", action="store_true")
    ap.add_argument("--sizes", default="64,512")
    args = ap.parse_args(argv)
    if args.mode == "child":
        return child(args)

    import requests

    from dev.stack import LocalStack
    from veorelay.config import ProviderSettings
    from veorelay.core.request import GenerationRequest
    from veorelay.providers.litellm_gemini import LiteLLMGemini

    stack = LocalStack(fast_retries=True)
    stack.start()
    try:
        env = {**os.environ, **stack.env, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
        provider = LiteLLMGemini(ProviderSettings("litellm-gemini", stack.env["VEO_LITELLM_GEMINI_BASE_URL"],
                                                  stack.env["VEO_LITELLM_GEMINI_API_KEY"]), requests.Session())
        cases = [(f"{mib} MiB {shape}", mib, directive) for mib in map(int, args.sizes.split(","))
                 for shape, directive in (("720p moov first", ""), ("4K moov last", ",clip_size=3840x2160,moov_last"))]
        for case, mib, directive in cases:
            prompt = f"rss #{uuid.uuid4().hex[:8]} [sim:duration=0,size={mib}MiB{directive}]"
            progress = provider.check(provider.submit(uuid.uuid4().hex, GenerationRequest(prompt=prompt)))
            url = progress.outputs[0].url
            base = run_child(env, ["--url", url, "--name", f"bench/rss/{uuid.uuid4().hex}/0.mp4", "--copy-only"])
            full = run_child(env, ["--url", url, "--name", f"bench/rss/{uuid.uuid4().hex}/0.mp4"])
            print(json.dumps({"case": case, "copy_only_rss_mib": base["rss_mib"], **full}), flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
