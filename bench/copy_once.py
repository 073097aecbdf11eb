"""One copy into GCS, in its own process so the parent can read this process's peak RSS.

    python -m bench.copy_once stream --url URL --name videos/x/0.mp4
    python -m bench.copy_once file --file /tmp/x.mp4 --name base/x.mp4
    python -m bench.copy_once idle

stream: finalize's code path: the provider's open_output() and sink.store_video() (download,
        verify, upload to the final name with its CRC32C checked by the bucket), as a
        deployment runs it by default (no sha256: VEO_OUTPUT_SHA256 unset).
file:   the baseline: the same client and chunk size uploading a local file.
idle:   imports and clients only (the fixed part of the RSS).
Prints one JSON line: {"mode", "bytes", "seconds"}.
Environment: STORAGE_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT, VEO_BUCKET, VEO_LITELLM_GEMINI_*.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests
from google.cloud import storage

from veorelay.config import ProviderSettings
from veorelay.gcp import sink
from veorelay.providers.base import OutputRef
from veorelay.providers.litellm_gemini import LiteLLMGemini


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["stream", "file", "idle"])
    ap.add_argument("--url")
    ap.add_argument("--file")
    ap.add_argument("--name", default="bench/idle")
    ap.add_argument("--chunk", type=int, default=8 * 1024 * 1024)
    args = ap.parse_args(argv)

    bucket = storage.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"]).bucket(os.environ["VEO_BUCKET"])
    result = {"mode": args.mode, "bytes": 0, "seconds": 0.0}
    if args.mode == "stream":
        provider = LiteLLMGemini(ProviderSettings("litellm-gemini", os.environ["VEO_LITELLM_GEMINI_BASE_URL"],
                                                  os.environ["VEO_LITELLM_GEMINI_API_KEY"]), requests.Session())
        started = time.perf_counter()
        stored = sink.store_video(provider.open_output(OutputRef(0, url=args.url)), bucket, args.name, {"bench": "1"}, args.chunk)
        result.update(seconds=time.perf_counter() - started, bytes=stored.size)
    elif args.mode == "file":
        blob = bucket.blob(args.name, chunk_size=args.chunk)
        started = time.perf_counter()
        blob.upload_from_filename(args.file, content_type=sink.VIDEO_CONTENT_TYPE)
        result.update(seconds=time.perf_counter() - started, bytes=os.path.getsize(args.file))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
