"""README "OpenAI-compatible API": its openai SDK block, as printed there, run against the local
stack: the video made with a first-frame file and veo-relay's own fields, downloaded byte for
byte as the bucket holds it, its poster beside it, and the listing printed."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .provider_helpers import png

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def block(name: str) -> str:
    found = re.search(rf"<!-- tested: {name} -->\n```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert found, f"README has no `<!-- tested: {name} -->` python block"
    return found.group(1)


def test_the_openai_sdk_block_makes_and_downloads_the_video(stack, client, bucket, tmp_path):
    (tmp_path / "first-frame.png").write_bytes(png(64, 36))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEORELAY_", "OPENAI_"))}
    env.update({"VEORELAY_URL": stack.function_urls["api"].rstrip("/"), "VEORELAY_API_KEY": stack.api_key,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    result = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", block("openai_sdk")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    first, *listed = result.stdout.splitlines()
    video_id, status, seconds, size = first.split()
    assert (status, seconds, size) == ("completed", "8", "1280x720")
    job = client.job(video_id)
    assert job["request"]["image"]["gcs_uri"].startswith("gs://") and job["request"]["negative_prompt"] == "blur"
    assert job["metadata"] == {"order": "8814"}
    assert (tmp_path / "hummingbird.mp4").read_bytes() == bucket.blob(job["outputs"][0]["name"]).download_as_bytes()
    assert (tmp_path / "hummingbird.jpg").read_bytes() == bucket.blob(job["outputs"][0]["poster"]["name"]).download_as_bytes()
    # the newest first: this video (up to 3 lines, as many as the client has)
    assert 1 <= len(listed) <= 3 and listed[0].startswith(f"{video_id} completed A hummingbird")
