"""HIL tests: isolated leases and sim cell YAMLs (the cells' helpers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cells"))
from cell_helpers import write_cell  # noqa: E402


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    """Leases of this test only."""
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "runtime"))
    return tmp_path / "runtime"


@pytest.fixture
def sim_cell(tmp_path) -> Path:
    return write_cell(tmp_path / "hcell.yaml", name="hcell")
