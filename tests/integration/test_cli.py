"""The `veorelay` command through its real entry point (.venv/bin/veorelay, a subprocess) against
the local stack: what a user types and what they see: stdout, the one-line errors on stderr, the
exit codes, the downloaded video (byte for byte the bucket's object), the live progress bar in a
pseudo-terminal, and `--help` on every subcommand."""
from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from dev.stack import DEV_WEBHOOK_SECRET

from .helpers import crc32c, md5, unique_prompt

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VEORELAY = REPO / ".venv" / "bin" / "veorelay"
SUBCOMMANDS = ("submit", "extend", "watch", "get", "list", "cancel", "download", "providers", "verify-webhook")


def cli_env(stack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEORELAY_") and k not in ("COLUMNS", "LINES")}
    env.update({"VEORELAY_URL": stack.function_urls["api"].rstrip("/"), "VEORELAY_API_KEY": stack.api_key,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "COLUMNS": "160"})
    env.update(extra)
    return env


def veorelay(stack, *args: str, env: dict[str, str] | None = None, timeout: float = 90, cwd: Path | None = None,
             stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it; stdout and stderr apart."""
    proc = subprocess.run([str(VEORELAY), *args], env=env or cli_env(stack), capture_output=True, timeout=timeout,
                          cwd=cwd, input=stdin)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert lines[0].startswith("veorelay: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished(stack, client):
    """One job submitted with `veorelay submit --wait` (and its result)."""
    assert VEORELAY.is_file(), "make setup installs clients/python into .venv (pip install -e clients/python)"
    prompt = unique_prompt("a kingfisher diving", "[sim:duration=1]")
    result = veorelay(stack, "submit", prompt, "--aspect-ratio", "16:9", "--metadata", "order=8812", "--wait")
    return prompt, result


def test_submit_wait_prints_the_id_and_succeeds(finished, client):
    prompt, result = finished
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), result.stdout
    job = client.job(job_id)
    assert job["status"] == "succeeded"
    assert job["request"]["prompt"] == prompt and job["request"]["aspect_ratio"] == "16:9"
    assert job["metadata"] == {"order": 8812}
    # not a terminal: a line a change on stderr, then the end with what to do next
    assert f"job {job_id} succeeded: 1 video(s)" in result.stderr
    assert f"veorelay download {job_id}" in result.stderr


def test_download_is_the_bucket_object_byte_for_byte(stack, finished, client, bucket, tmp_path):
    job_id = finished[1].stdout.strip()
    result = veorelay(stack, "download", job_id, str(tmp_path / "kingfisher.mp4"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "kingfisher.mp4")
    output = client.job(job_id)["outputs"][0]
    stored = bucket.blob(output["name"]).download_as_bytes()
    assert (tmp_path / "kingfisher.mp4").read_bytes() == stored
    assert (output["crc32c"], output["md5"]) == (crc32c(stored), md5(stored))  # what the download was checked against
    # into a folder: <job id>-<index>.mp4
    again = veorelay(stack, "download", job_id, str(tmp_path), "--json")
    assert json.loads(again.stdout) == {"job_id": job_id, "index": 0, "path": str(tmp_path / f"{job_id}-0.mp4"), "size": len(stored)}


def test_download_poster_is_the_bucket_jpeg(stack, finished, client, bucket, tmp_path):
    job_id = finished[1].stdout.strip()
    result = veorelay(stack, "download", job_id, str(tmp_path), "--poster")
    assert result.returncode == 0, result.stderr
    saved = Path(result.stdout.strip())
    assert saved == tmp_path / f"{job_id}-0.jpg"
    poster = client.job(job_id)["outputs"][0]["poster"]
    assert saved.read_bytes() == bucket.blob(poster["name"]).download_as_bytes()
    assert saved.read_bytes()[:3] == b"\xff\xd8\xff"


def test_get_json_is_the_apis_job(stack, finished, client):
    job_id = finished[1].stdout.strip()
    result = veorelay(stack, "get", job_id, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == client.job(job_id)
    table = veorelay(stack, "get", job_id)
    assert re.search(r"status\s+succeeded", table.stdout) and "video #0" in table.stdout
    crc = client.job(job_id)["outputs"][0]["crc32c"]
    assert re.search(rf"crc32c\s+{re.escape(crc)}\)", table.stdout) and "sha256" not in table.stdout, table.stdout


def test_list_shows_the_job(stack, finished):
    job_id = finished[1].stdout.strip()
    as_json = veorelay(stack, "list", "--json", "--limit", "100", "--status", "succeeded")
    assert as_json.returncode == 0, as_json.stderr
    jobs = json.loads(as_json.stdout)
    assert job_id in [j["id"] for j in jobs] and {j["status"] for j in jobs} == {"succeeded"}
    table = veorelay(stack, "list", "--limit", "100")
    assert table.returncode == 0 and job_id in table.stdout


def test_cancel_a_running_job_then_a_finished_one_is_a_conflict(stack, finished):
    submitted = veorelay(stack, "submit", unique_prompt("a slow sunrise", "[sim:never_finish]"))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    result = veorelay(stack, "cancel", job_id)
    assert (result.returncode, result.stdout.strip()) == (0, f"{job_id} cancelled")
    watched = veorelay(stack, "watch", job_id)
    assert watched.returncode == 1 and watched.stdout.strip() == "cancelled"
    conflict = veorelay(stack, "cancel", finished[1].stdout.strip())
    assert conflict.returncode == 3
    assert one_error_line(conflict).startswith("veorelay: error: conflict: ")
    assert conflict.stderr.rstrip().endswith("[HTTP 409]")


def test_extend_continues_the_finished_job(stack, finished, client):
    source = finished[1].stdout.strip()
    result = veorelay(stack, "extend", source, unique_prompt("the kingfisher flies off"), "--wait", "--json")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded" and job["id"] != source
    assert client.job(job["id"])["request"]["extend"]["job_id"] == source
    # an unknown job cannot be extended: the API's refusal, one line
    refused = veorelay(stack, "extend", "f" * 32, "more")
    assert refused.returncode == 3
    assert one_error_line(refused).startswith("veorelay: error: ")
    assert "(field: extend" in refused.stderr


def test_a_failed_job_exits_1_with_its_error_code(stack):
    result = veorelay(stack, "submit", unique_prompt("a filtered scene", "[sim:rai_filtered]"), "--wait")
    assert result.returncode == 1, result.stderr
    assert re.search(r"^veorelay: job [0-9a-f]{32} failed: rai_filtered: ", result.stderr, re.M), result.stderr


@pytest.mark.parametrize(("args", "env_change", "code", "line"), [
    (("get", "f" * 32), {}, 3, "veorelay: error: not_found: no such job (field: id) [HTTP 404]"),
    (("submit", "a cat", "--aspect-ratio", "4:3"), {}, 3, "veorelay: error: invalid_request: "),
    (("submit", "a cat", "--provider", "gemini", "--duration", "5"), {}, 3, "veorelay: error: unsupported_option: "),
    (("providers",), {"VEORELAY_API_KEY": "vr_wrong"}, 3, "veorelay: error: unauthenticated: "),
    (("providers",), {"VEORELAY_URL": "http://127.0.0.1:9"}, 4, "veorelay: error: network: "),
    (("providers",), {"VEORELAY_URL": ""}, 2, "veorelay: error: usage: no API URL"),
    (("submit", "a cat", "--image", "/no/such.png"), {}, 2, "veorelay: error: usage: --image /no/such.png: no such file"),
])
def test_errors_are_one_line_with_the_code_and_the_exit_code(stack, args, env_change, code, line):
    result = veorelay(stack, *args, env=cli_env(stack, **env_change))
    assert result.returncode == code, (result.stdout, result.stderr)
    assert one_error_line(result).startswith(line)
    assert result.stdout == ""


def test_json_errors_are_the_error_object_on_stdout(stack):
    result = veorelay(stack, "get", "f" * 32, "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout) == {"error": {"code": "not_found", "message": "no such job", "field": "id", "status": 404}}


def test_a_bad_option_is_a_usage_error(stack):
    result = veorelay(stack, "submit", "a cat", "--duration", "eight")
    assert result.returncode == 2 and "--duration" in result.stderr


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(stack, command):
    result = veorelay(stack, command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: veorelay {command}" in result.stdout
    assert "--help" in result.stdout


def test_the_top_level_help_lists_the_commands_and_the_exit_codes(stack):
    result = veorelay(stack, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for command in SUBCOMMANDS:
        assert command in text
    assert "VEORELAY_URL" in text and "VEORELAY_API_KEY" in text
    for code in range(7):
        assert f"{code} " in text.split("Exit codes:")[1]


def test_providers_is_the_capability_table(stack, client):
    as_json = veorelay(stack, "providers", "--json")
    assert json.loads(as_json.stdout) == __import__("requests").get(f"{client.api}/providers", headers=client.auth, timeout=10).json()
    table = veorelay(stack, "providers")
    for name in json.loads(as_json.stdout)["providers"]:
        assert name in table.stdout
    assert "(default)" in table.stdout


def test_verify_webhook_checks_the_signature_of_a_delivered_event(stack, client, tmp_path):
    url, path = client.hook_url("cli")
    submitted = veorelay(stack, "submit", unique_prompt("a heron"), "--webhook-url", url, "--wait")
    assert submitted.returncode == 0, submitted.stderr
    (received,) = client.webhooks(path, event="job.succeeded")
    request = tmp_path / "webhook.json"
    request.write_text(json.dumps(received))
    result = veorelay(stack, "verify-webhook", "--request", str(request), env=cli_env(stack, VEORELAY_WEBHOOK_SECRET=DEV_WEBHOOK_SECRET))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"verified: job.succeeded job {submitted.stdout.strip()} succeeded"
    body = tmp_path / "body.json"
    body.write_bytes(received["body"].replace("succeeded", "failed").encode())
    headers = [a for k, v in received["headers"].items() if k.lower().startswith("webhook-") for a in ("-H", f"{k}: {v}")]
    forged = veorelay(stack, "verify-webhook", "--body", str(body), *headers, "--secret", DEV_WEBHOOK_SECRET)
    assert forged.returncode == 5
    assert one_error_line(forged) == "veorelay: error: webhook_invalid: no signature matches (wrong secret, or the body was changed)"


# ----------------------------------------------------------------------------------- the progress bar
def run_in_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a command with a pseudo-terminal (120x40) as its stdin, stdout and stderr: what a user's
    terminal would receive, escape sequences and all."""
    main_fd, child_fd = os.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(args, stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, close_fds=True)
    os.close(child_fd)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # EIO: the child side is closed
                    break
                if not chunk:
                    break
                received += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"{args} did not end in {timeout}s: {received.decode(errors='replace')[-2000:]}")
        return proc.wait(timeout=10), received.decode("utf-8", errors="replace")
    finally:
        os.close(main_fd)


def test_watch_in_a_terminal_shows_a_live_progress_bar_that_ends_at_succeeded(stack):
    submitted = veorelay(stack, "submit", unique_prompt("a hummingbird", "[sim:duration=3]"))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    env = cli_env(stack, TERM="xterm-256color")
    env.pop("COLUMNS")
    env.pop("NO_COLOR", None)
    code, screen = run_in_pty([str(VEORELAY), "watch", job_id], env)
    assert code == 0, screen
    assert "━" in screen, screen  # rich's bar
    assert "\x1b[" in screen  # redrawn in place (cursor movement and colour), not printed line by line
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert re.search(rf"{job_id[:12]} (accepted|running)", plain), plain
    assert re.search(rf"{job_id[:12]} succeeded\s+━+\s+100%", plain), plain
    last_lines = [line.strip() for line in plain.replace("\r", "\n").splitlines() if line.strip()]
    assert last_lines[-1] == "succeeded"
    assert last_lines[-2].startswith(f"job {job_id} succeeded: 1 video(s)")


def test_download_in_a_terminal_shows_a_transfer_bar(stack, finished, client, tmp_path):
    job_id = finished[1].stdout.strip()
    env = cli_env(stack, TERM="xterm-256color")
    env.pop("COLUMNS")
    code, screen = run_in_pty([str(VEORELAY), "download", job_id, str(tmp_path / "v.mp4")], env)
    assert code == 0, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert re.search(rf"{job_id[:12]} download\s+━+\s+[0-9.]+/[0-9.]+ [kMG]?B", plain), plain
    assert md5((tmp_path / "v.mp4").read_bytes()) == client.job(job_id)["outputs"][0]["md5"]  # the whole video, not a part


def test_the_stack_prints_what_the_command_reads(stack):
    from dev.stack import client_env

    env = client_env(stack)
    assert env == {"VEORELAY_URL": stack.function_urls["api"].rstrip("/"), "VEORELAY_API_KEY": stack.api_keys["demo"]}
    result = veorelay(stack, "providers", "--json", env={**cli_env(stack), **env})
    assert result.returncode == 0 and "providers" in json.loads(result.stdout)


def test_python_m_runs_the_same_command(stack):
    result = subprocess.run([sys.executable, "-m", "veorelay_client", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "Usage: veorelay [OPTIONS] COMMAND" in result.stdout
