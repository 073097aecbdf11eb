"""README "Command line and Python client": its two blocks, as printed there, run against the local
stack: the shell tour (bash, with .venv/bin first on PATH, as after `make setup`) ends with the
video on disk, byte for byte the bucket's object; the Python block submits with a first-frame
image file, waits and downloads."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .helpers import crc32c
from .provider_helpers import png

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def block(name: str, language: str) -> str:
    found = re.search(rf"<!-- tested: {name} -->\n```{language}\n(.*?)```", README.read_text(), re.S)
    assert found, f"README has no `<!-- tested: {name} -->` {language} block"
    return found.group(1)


def env_for(stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEORELAY_")}
    env.update({"VEORELAY_URL": stack.function_urls["api"].rstrip("/"), "VEORELAY_API_KEY": stack.api_key,
                "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


def test_the_shell_tour_ends_with_the_video_on_disk(stack, client, bucket, tmp_path):
    script = block("cli_tour", "sh")
    assert script.lstrip().startswith("veorelay providers") and "veorelay download" in script
    # The block, then a line of the test's own to learn which job it made.
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script + 'printf %s "$JOB" > job-id\n'],
                            cwd=tmp_path, env=env_for(stack), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    job_id = (tmp_path / "job-id").read_text()
    job = client.job(job_id)
    assert job["status"] == "succeeded" and job["metadata"] == {"order": 8812}
    assert job["request"]["duration_seconds"] == 8 and job["request"]["aspect_ratio"] == "16:9"
    stored = bucket.blob(job["outputs"][0]["name"]).download_as_bytes()
    assert (tmp_path / "hummingbird.mp4").read_bytes() == stored
    # what the user saw: the providers table, the job, its listing
    assert "litellm-gemini" in result.stdout and re.search(r"status\s+succeeded", result.stdout)
    assert result.stdout.count(job_id) >= 2  # `get` and `list`


def test_the_python_block_submits_an_image_waits_and_downloads(stack, client, bucket, tmp_path):
    (tmp_path / "first-frame.png").write_bytes(png(64, 36))
    result = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", block("python_client", "python")],
                            cwd=tmp_path, env=env_for(stack), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("accepted") and any(line.startswith("succeeded 100") for line in lines)
    path, crc = next(line for line in lines if line.startswith("takeoff.mp4 ")).split()
    assert crc32c((tmp_path / path).read_bytes()) == crc  # the output's crc32c, as Cloud Storage has it
    (takeoff,) = [line.split()[0] for line in lines[-3:] if line.split()[-1] == "flower" and "takes off" in line]
    job = client.job(takeoff)
    assert job["request"]["image"]["gcs_uri"].startswith("gs://") and job["metadata"] == {"order": 8813}
    assert bucket.blob(job["outputs"][0]["name"]).exists()
