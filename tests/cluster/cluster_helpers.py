"""Helpers of the cluster tests (a module of its own: `conftest` names another folder's in a full run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

LIFT = "PandaLift-v0"
CELLS = ("rayA", "rayB")


def write_cell(path: Path, name: str) -> Path:
    """A sim cell: a real-time sim_panda (no watchdog: a loaded CI machine starves the loop) and a camera."""
    path.write_text(yaml.safe_dump({"name": name, "resources": {
        "arm": {"type": "sim_panda", "config": {"control_mode": "ee_delta", "control_hz": 10, "realtime": True,
                                                "watchdog_timeout_s": 0.0}},
        "front": {"type": "mujoco_camera", "config": {"camera": "front", "width": 64, "height": 64, "fps": 10},
                  "wiring": {"sim": "arm"}},
    }}))
    return path


def robo(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def cluster_status(address: str) -> list[dict]:
    proc = robo("cluster", "status", "--address", address, "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)
