"""`make demo`: one video job end to end on the local stack.

Starts the emulators, the provider simulator, the webhook receiver and the functions,
submits one job through the public API, shows it move, and saves what a user gets into
out/: the video(s), job.json (GET /jobs/{id}) and webhook.json (the signed request the
receiver got). Set VEO_<PROVIDER>_BASE_URL (and _API_KEY) to use a real provider instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import requests
import standardwebhooks
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from rich.console import Console

from dev.stack import LocalStack
from veorelay.config import PROVIDER_NAMES, provider_env_prefix

ROOT = Path(__file__).resolve().parent.parent
console = Console()


def real_provider_env(provider: str) -> dict[str, str]:
    """The user's own VEO_<PROVIDER>_* variables, when they point the demo at a real service."""
    prefix = provider_env_prefix(provider)
    if not os.environ.get(prefix + "BASE_URL"):
        return {}
    return {k: v for k, v in os.environ.items() if k.startswith(prefix)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--provider", default="litellm-gemini", choices=PROVIDER_NAMES)
    parser.add_argument("--prompt", default="A cinematic shot of a hummingbird flying in slow motion")
    parser.add_argument("--out", default=str(ROOT / "out"))
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    real = real_provider_env(args.provider)
    extra_env = {
        "VEO_DEFAULT_PROVIDER": args.provider,
        # The simulator finishes in seconds; a real Veo job takes minutes.
        "VEO_POLL_INITIAL_DELAY_SECONDS": "20" if real else "2",
        "VEO_POLL_MIN_DELAY_SECONDS": "5" if real else "1",
        "VEO_POLL_MAX_DELAY_SECONDS": "30" if real else "2",
        **real,
    }
    if os.environ.get("VEO_WEBHOOK_SECRET"):
        extra_env["VEO_WEBHOOK_SECRET"] = os.environ["VEO_WEBHOOK_SECRET"]
    if real and args.provider == "vertex":
        # Real Vertex cannot write into the emulated bucket, and without a token of yours it
        # uses your application default credentials (not the simulator's key).
        extra_env.setdefault("VEO_VERTEX_WRITE_TO_BUCKET", "false")
        extra_env.setdefault("VEO_VERTEX_API_KEY", "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    console.rule("[bold]veo-relay demo")
    where = real[provider_env_prefix(args.provider) + "BASE_URL"] if real else "the local simulator"
    console.print(f"provider [bold]{args.provider}[/] at {where}")
    with console.status("starting the local stack (Firestore, GCS, Cloud Tasks emulators, simulator, functions)..."):
        stack = LocalStack(workdir=ROOT / ".stack" / "demo", extra_env=extra_env)
        stack.start()
    try:
        if not real:
            requests.post(f"{stack.simulator_url}/_sim/config", json={"duration_s": 6}, timeout=5)
        return run_job(stack, args, out)
    finally:
        with console.status("stopping the local stack..."):
            stack.stop()


def run_job(stack: LocalStack, args: argparse.Namespace, out: Path) -> int:
    api = stack.function_urls["api"].rstrip("/")
    hook_path = "/demo-webhook"
    body = {"prompt": args.prompt, "provider": args.provider, "webhook_url": stack.webhook_receiver_url.rstrip("/") + hook_path}
    console.print(f"POST {api}/jobs {json.dumps(body)}")
    auth = {"Authorization": f"Bearer {stack.api_key}"}  # the stack's dev key of client `demo`
    resp = requests.post(f"{api}/jobs", json=body, headers=auth, timeout=30)
    if resp.status_code != 202:
        console.print(f"[red]refused: {resp.status_code} {resp.text}")
        return 1
    job = resp.json()
    job_id = job["id"]
    console.print(f"job [bold]{job_id}[/] accepted")

    started, seen = time.monotonic(), None
    while time.monotonic() - started < args.timeout:
        job = requests.get(f"{api}/jobs/{job_id}", headers=auth, timeout=10).json()
        state = (job["status"], (job.get("progress") or {}).get("percent"))
        if state != seen:
            console.print(f"  {time.monotonic() - started:6.1f}s  {job['status']:<12} progress {state[1]}%")
            seen = state
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    (out / "job.json").write_text(json.dumps(job, indent=2))
    if job["status"] != "succeeded":
        console.print(f"[red]job ended {job['status']}: {job.get('error')}")
        return 1

    gcs = storage.Client(
        project=stack.env["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": stack.env["STORAGE_EMULATOR_HOST"]},
    )
    saved = []
    for output in job["outputs"]:
        bucket_name, name = output["uri"][len("gs://"):].split("/", 1)
        local = out / (f"video-{output['index']}.mp4" if len(job["outputs"]) > 1 else "video.mp4")
        gcs.bucket(bucket_name).blob(name).download_to_filename(local)
        saved.append((output, local))

    hook = wait_for_webhook(stack, hook_path)
    job = requests.get(f"{api}/jobs/{job_id}", headers=auth, timeout=10).json()  # now with the delivery recorded
    (out / "job.json").write_text(json.dumps(job, indent=2))
    if hook:
        (out / "webhook.json").write_text(json.dumps(hook, indent=2))
        standardwebhooks.Webhook(stack.env["VEO_WEBHOOK_SECRET"]).verify(hook["body"], hook["headers"])

    console.rule("[green]done")
    console.print(f"job id      {job_id}")
    for output, local in saved:
        console.print(f"video       {output['uri']}  ({output['size']} bytes, crc32c {output['crc32c']})")
        console.print(f"local copy  {local}")
    console.print(f"job         {out / 'job.json'}")
    console.print(f"webhook     {out / 'webhook.json'} ({'signature verified' if hook else 'NOT received'})")
    return 0 if hook else 1


def wait_for_webhook(stack: LocalStack, path: str, timeout_s: float = 30) -> dict | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        received = requests.get(f"{stack.webhook_receiver_url}/_received", params={"path": path}, timeout=5).json()
        # job.running comes first; the demo keeps the event that ends the job.
        final = [r for r in received if json.loads(r["body"]).get("type") in ("job.succeeded", "job.failed", "job.cancelled")]
        if final:
            return final[-1]
        time.sleep(0.3)
    return None


if __name__ == "__main__":
    sys.exit(main())
