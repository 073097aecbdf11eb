"""Fixtures of the offline infrastructure tests (helpers live in infra_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from infra_helpers import Terraform, load_terraform


@pytest.fixture(scope="session")
def tf() -> Terraform:
    return load_terraform()
