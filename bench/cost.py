"""Part 4: what 1,000 jobs cost in Google Cloud for veo-relay's own work, from the counts
measured in part 3 and public list prices (USD, Tier 1 region such as us-central1, free
tiers ignored), next to what Veo charges for the same 1,000 videos.

Function time is an upper bound: every invocation is billed its own wall time, as with
concurrency 1 (the deployment allows more per instance, which only lowers it), at the
vCPU and memory infra/main.tf gives each function.
"""
from __future__ import annotations

from typing import Any

from .results import Figure

# Cloud Run (functions 2nd gen), request-based billing: https://cloud.google.com/run/pricing
RUN_PER_VCPU_S = 0.000024
RUN_PER_GIB_S = 0.0000025
RUN_PER_REQUEST = 0.40 / 1e6
# Cloud Tasks: https://cloud.google.com/tasks/pricing (a task = its creation + its delivery)
TASKS_PER_OP = 0.40 / 1e6
# Firestore, regional: https://cloud.google.com/firestore/pricing
FIRESTORE_PER_READ = 0.03 / 1e5
FIRESTORE_PER_WRITE = 0.09 / 1e5
# Cloud Storage, Standard, regional: https://cloud.google.com/storage/pricing
GCS_PER_CLASS_A = 0.005 / 1000
GCS_PER_CLASS_B = 0.0004 / 1000
# Veo 3 via the Gemini API, video with audio: $0.40 per second of video
# (https://ai.google.dev/gemini-api/docs/pricing); the default model and 8-second videos.
VEO_PER_VIDEO_SECOND = 0.40
VIDEO_SECONDS = 8

# vCPU and memory (GiB) per function, as in infra/main.tf's function_catalog.
FUNCTION_SIZES = {
    "api": (1, 0.5), "submit_job": (1, 0.5), "poll_job": (1, 0.25), "finalize_job": (1, 1.0),
    "deliver_webhook": (1, 0.25), "stream_job": (1, 0.5), "sweep_jobs": (1, 0.5),
}
# A typical Veo video (8 s, 720p) is about 20 MB (docs/COSTS.md): finalize streams it at the
# throughput part 1 measured, which the short e2e videos do not include.
TYPICAL_VIDEO_MB = 20.0


def run(usage: dict[str, Any], stream_mib_s: float | None) -> list[Figure]:
    per_job = usage["per_job"]
    vcpu_s = gib_s = 0.0
    for target, counts in per_job.items():
        cpu, gib = FUNCTION_SIZES.get(target, (1, 0.5))
        busy = counts.get("busy_s", 0.0)
        if target == "finalize_job" and stream_mib_s:
            busy += TYPICAL_VIDEO_MB / 1.048576 / stream_mib_s
        vcpu_s += busy * cpu
        gib_s += busy * gib
    lines = {
        "Cloud Run (functions): requests": usage["invocations"] * RUN_PER_REQUEST,
        "Cloud Run (functions): vCPU and memory time": vcpu_s * RUN_PER_VCPU_S + gib_s * RUN_PER_GIB_S,
        "Cloud Tasks": 2 * usage["task_invocations"] * TASKS_PER_OP,
        "Firestore": usage["firestore_reads"] * FIRESTORE_PER_READ + usage["firestore_writes"] * FIRESTORE_PER_WRITE,
        "Cloud Storage operations": usage["gcs_class_a"] * GCS_PER_CLASS_A + usage["gcs_class_b"] * GCS_PER_CLASS_B,
    }
    veo = VEO_PER_VIDEO_SECOND * VIDEO_SECONDS * 1000
    total = sum(lines.values()) * 1000
    figures = [Figure("4 cost", f"per 1,000 jobs: {name}", value * 1000, "USD") for name, value in lines.items()]
    figures.append(Figure("4 cost", "per 1,000 jobs: veo-relay's own GCP work, total", total, "USD", baseline=veo,
                          note=f"baseline: Veo for the same 1,000 videos ({VIDEO_SECONDS} s at ${VEO_PER_VIDEO_SECOND}/s); "
                               f"function time {vcpu_s:.2f} vCPU-s and {gib_s:.2f} GiB-s per job (upper bound, concurrency 1), "
                               f"finalize includes streaming a {TYPICAL_VIDEO_MB:g} MB video; storage of the videos "
                               f"and egress to users are the user's data, not counted"))
    return figures
