"""`pip install ./clients/python` into a fresh virtualenv, as a user would: the client and the
`veorelay` command work there and none of the server's dependencies came along."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("google-cloud-firestore", "google-cloud-storage", "google-cloud-tasks", "functions-framework", "flask",
               "requests", "cloudevents", "standardwebhooks", "pillow", "ijson", "cryptography")


@pytest.mark.timeout(240)
def test_the_package_installs_into_a_fresh_venv_without_the_servers_dependencies(tmp_path):
    # A copy: a build in place would leave build/ and egg-info in the tree other runs share.
    source = tmp_path / "src"
    shutil.copytree(REPO / "clients" / "python", source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    venv = tmp_path / "venv"
    # No pip inside (ensurepip takes seconds): the project's pip installs into it (--python).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "--disable-pip-version-check"]
    install = subprocess.run([*pip, "install", "--quiet", "--no-compile", str(source)],
                             capture_output=True, text=True, timeout=180, env=env)
    assert install.returncode == 0, install.stderr[-3000:]

    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True, check=True, env=env)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"veorelay", "httpx", "typer", "rich"} <= installed
    assert not installed & set(SERVER_ONLY), installed & set(SERVER_ONLY)

    probe = (
        "import importlib.util, veorelay_client\n"
        "assert importlib.util.find_spec('google') is None, 'google.* is installed'\n"
        "assert importlib.util.find_spec('veorelay') is None, 'the server package came along'\n"
        "c = veorelay_client.Client('http://127.0.0.1:9', 'k')\n"
        "print(veorelay_client.__version__, type(c).__name__)\n"
    )
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["0.1.0", "Client"]
    helped = subprocess.run([str(venv / "bin" / "veorelay"), "list", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert helped.returncode == 0 and "Usage: veorelay list" in helped.stdout
