"""Cell tests: isolated leases, sim cell YAMLs, and a lift base that succeeds (for runs and evaluations)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cell_helpers import write_cell  # noqa: E402


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    """Leases of this test only (a real process-wide lease directory would see other tests' sim cells)."""
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "runtime"))
    return tmp_path / "runtime"


@pytest.fixture
def sim_cell(tmp_path) -> Path:
    return write_cell(tmp_path / "tcell.yaml", cameras=("front",))
