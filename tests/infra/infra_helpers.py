"""Helpers for the offline infrastructure tests: read infra/*.tf (python-hcl2), the
functions declared in functions/main.py (ast), cloudbuild.yaml, and run dev/checks.sh."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN_PY = REPO / "functions" / "main.py"
CONFIG_PY = REPO / "functions" / "veorelay" / "config.py"
CLOUDBUILD = REPO / "cloudbuild.yaml"
CHECKS = REPO / "dev" / "checks.sh"

# functions-framework decorators and the kind of trigger each serves.
DECORATOR_KINDS = {"http": "http", "cloud_event": "cloud_event", "typed": "http", "errorhandler": None}


# ------------------------------------------------------------------------------ Terraform
def _options():
    from hcl2 import SerializationOptions

    return SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


@cache
def load_hcl(path: Path) -> dict[str, Any]:
    import hcl2

    with open(path, encoding="utf-8") as fh:
        return hcl2.load(fh, serialization_options=_options())


@dataclass(frozen=True)
class Terraform:
    locals: dict[str, Any]
    variables: dict[str, dict[str, Any]]
    resources: dict[tuple[str, str], dict[str, Any]]  # (type, name) -> body
    files: dict[str, str]  # file name -> text

    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        try:
            return self.resources[(rtype, name)]
        except KeyError:
            pytest.fail(f"infra/ declares no resource {rtype}.{name}", pytrace=False)

    def resources_of(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}

    @property
    def text(self) -> str:
        return "\n".join(self.files.values())


@cache
def _load_terraform(infra: Path) -> Terraform:
    locals_: dict[str, Any] = {}
    variables: dict[str, dict[str, Any]] = {}
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    files: dict[str, str] = {}
    paths = sorted(infra.glob("*.tf"))
    if not paths:
        pytest.fail(f"no Terraform files in {infra}", pytrace=False)
    for path in paths:
        files[path.name] = path.read_text(encoding="utf-8")
        doc = load_hcl(path)
        for block in doc.get("locals", []):
            for key, value in block.items():
                assert key not in locals_, f"local.{key} is defined twice (second time in {path.name})"
                locals_[key] = value
        for block in doc.get("variable", []):
            variables.update(block)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    resources[(rtype, name)] = body
    return Terraform(locals_, variables, resources, files)


def load_terraform(infra: Path = INFRA) -> Terraform:
    return _load_terraform(infra)


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${")


# ------------------------------------------------------------------------------ main.py
def decorated_functions(path: Path) -> dict[str, str]:
    """Module-level functions of `path` decorated by functions-framework: name -> "http" | "cloud_event".

    Recognises @functions_framework.http, @functions_framework.cloud_event (any alias of the
    module) and the bare names imported with `from functions_framework import http, cloud_event`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_aliases, bare = _framework_names(tree)

    def kind_of(decorator: ast.expr) -> str | None:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in module_aliases:
            return DECORATOR_KINDS.get(target.attr)
        if isinstance(target, ast.Name) and target.id in bare:
            return DECORATOR_KINDS.get(bare[target.id])
        return None

    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kinds = {k for k in (kind_of(d) for d in node.decorator_list) if k}
            if len(kinds) > 1:
                raise AssertionError(f"{path.name}: {node.name} has conflicting decorators {sorted(kinds)}")
            if kinds:
                found[node.name] = kinds.pop()
    return found


def _framework_names(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """The names functions_framework is imported as, and its decorators imported bare (alias -> name)."""
    module_aliases: set[str] = set()
    bare: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "functions_framework":
                    module_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module == "functions_framework":
            for alias in node.names:
                if alias.name in DECORATOR_KINDS:
                    bare[alias.asname or alias.name] = alias.name
    return module_aliases, bare


# ------------------------------------------------------------------------------ YAML
def load_yaml(path: Path) -> Any:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


# ------------------------------------------------------------------------------ dev/checks.sh
@dataclass(frozen=True)
class CheckResult:
    returncode: int
    output: str


def run_check(name: str, env: dict[str, str] | None = None, timeout: float = 120) -> CheckResult:
    """Run one offline check exactly as dev/checks.sh does; a missing tool fails with how to install it."""
    proc = subprocess.run(
        ["bash", str(CHECKS), name],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    output = _strip_terraform_cli_noise(proc.stdout)
    if proc.returncode == 127:
        pytest.fail(f"the {name} check cannot run, a tool is missing:\n{output}", pytrace=False)
    return CheckResult(proc.returncode, output)


_CLI_CONFIG_WARNING = re.compile(
    r"There are some problems with the CLI configuration:\n.*?The CLI configuration file at \"[^\"]*\" does not exist\.\n╵\n\n?",
    re.S,
)


def _strip_terraform_cli_noise(text: str) -> str:
    """Terraform warns on stderr when TF_CLI_CONFIG_FILE names a missing file; not a finding."""
    return _CLI_CONFIG_WARNING.sub("", text)
