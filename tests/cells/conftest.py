"""Cell tests: isolated leases, sim cell YAMLs, and a lift base that succeeds (for runs and evaluations)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))

LIFT = "PandaLift-v0"


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    """Leases of this test only (a real process-wide lease directory would see other tests' sim cells)."""
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "runtime"))
    return tmp_path / "runtime"


def write_cell(path: Path, *, cameras: tuple[str, ...] = (), watchdog_timeout_s: float = 0.0,
               name: str = "tcell") -> Path:
    """A sim cell YAML: a real-time sim_panda (the C++ loop on the wall clock) and MuJoCo cameras."""
    resources: dict = {"arm": {"type": "sim_panda", "config": {
        "control_mode": "ee_delta", "control_hz": 10, "realtime": True, "watchdog_timeout_s": watchdog_timeout_s}}}
    for cam in cameras:
        resources[cam] = {"type": "mujoco_camera", "config": {"camera": cam, "width": 64, "height": 64, "fps": 10},
                          "wiring": {"sim": "arm"}}
    path.write_text(yaml.safe_dump({"name": name, "resources": resources}))
    return path


@pytest.fixture
def sim_cell(tmp_path) -> Path:
    return write_cell(tmp_path / "tcell.yaml", cameras=("front",))
