"""The offline checks, as tests: terraform fmt, checkov, yamllint, shellcheck (dev/checks.sh).

Each fails with the tool's own output; a missing tool fails (never skips) with how to install it."""

from __future__ import annotations

import re
import shutil

from infra_helpers import INFRA, REPO, run_check

SKIP_RE = re.compile(r"#\s*checkov:skip=([^:\s]*)(?::(.*))?")
CHECK_ID_RE = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


def test_terraform_fmt():
    result = run_check("fmt")
    assert result.returncode == 0, f"terraform fmt -check -recursive infra failed (run `terraform fmt -recursive infra`):\n{result.output}"


def test_terraform_fmt_catches_bad_formatting(tmp_path):
    (tmp_path / "bad.tf").write_text('locals {\n  a = 1\n  bb    = 2\n}\n')
    result = run_check("fmt", env={"INFRA_DIR": str(tmp_path)})
    assert result.returncode != 0 and "bad.tf" in result.output, result.output


def checkov_skips() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted(INFRA.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = SKIP_RE.search(line)
            if m:
                found.append((path.name, lineno, m.group(1), (m.group(2) or "").strip()))
    return found


def test_every_checkov_skip_is_justified():
    bad = [
        f"{name}:{lineno}: {check or '(no id)'}"
        for name, lineno, check, reason in checkov_skips()
        if not CHECK_ID_RE.match(check) or len(reason) < 40
    ]
    assert not bad, "each #checkov:skip=<CHECK_ID>:<reason> needs a real check id and a reason of a sentence or more:\n" + "\n".join(bad)


def test_checkov_has_no_failed_checks():
    result = run_check("checkov")
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", result.output)
    assert result.returncode == 0 and summary, f"checkov failed:\n{result.output}"
    passed, failed, skipped = map(int, summary.groups())
    assert failed == 0, result.output
    assert passed > 0, f"checkov ran no check:\n{result.output}"
    # A skip whose id matches nothing is silently ignored by checkov: every skip must be used.
    assert skipped == len(checkov_skips()), (
        f"checkov applied {skipped} skips but infra/ has {len(checkov_skips())} #checkov:skip comments "
        f"(a misspelt id or a skip on the wrong block):\n{result.output}"
    )


def test_checkov_catches_an_insecure_bucket(tmp_path):
    (tmp_path / "bad.tf").write_text(
        'resource "google_storage_bucket" "b" {\n  name     = "b"\n  location = "US"\n}\n'
    )
    result = run_check("checkov", env={"INFRA_DIR": str(tmp_path)})
    assert result.returncode != 0 and "CKV_GCP_29" in result.output, result.output


def test_yamllint():
    result = run_check("yamllint")
    assert result.returncode == 0, f"yamllint (config .yamllint) failed:\n{result.output}"


def test_shellcheck():
    result = run_check("shellcheck")
    assert result.returncode == 0, f"shellcheck failed:\n{result.output}"


def test_shellcheck_covers_every_script():
    listed = {line.removeprefix("./") for line in run_check("files").output.split()}
    expected = {str(p.relative_to(REPO)) for p in REPO.rglob("*.sh") if not any(
        part.startswith(".venv") or part in {".git", "node_modules", ".terraform", ".stack", "out", "__pycache__"}
        for part in p.relative_to(REPO).parts
    )}
    if (REPO / ".ci" / "run").exists():
        expected.add(".ci/run")
    assert {"infra/deploy.sh", "infra/tf.sh", "dev/checks.sh"} <= expected
    assert listed == expected, f"shellcheck misses {sorted(expected - listed)}, or checks extra {sorted(listed - expected)}"


def test_bash_is_available_for_the_checks():
    assert shutil.which("bash"), "dev/checks.sh needs bash"
