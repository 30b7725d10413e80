"""Helpers of the cell tests (a module of its own: `conftest` names another folder's in a full run)."""

from __future__ import annotations

from pathlib import Path

import yaml

LIFT = "PandaLift-v0"


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
