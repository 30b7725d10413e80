"""Console tests: one headless Chromium per module (Debian's `chromium`, driven by playwright), isolated
leases, a sim cell with one tiny camera, and a stand-in policy that drifts the arm (so frames change)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cells"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cell_helpers import write_cell  # noqa: E402

CHROMIUM = os.environ.get("ROBO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
from console_helpers import LIFT  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def runtime_dir(tmp_path_factory):
    """Leases and the session registry of this module only (its session outlives single tests)."""
    path = tmp_path_factory.mktemp("runtime")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROBO_RUNTIME_DIR", str(path))
        yield path


def launch_browser(tmp_dir: Path):
    """(playwright, browser) on Debian's chromium; fails (never skips) with what to install when it is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the console tests need playwright: run `bash scripts/install.sh` (pip install -e '.[dev]')")
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        pytest.fail(f"no chromium at {CHROMIUM}: run `bash scripts/install.sh` (apt-get install chromium)")
    pw = sync_playwright().start()
    browser = pw.chromium.launch_persistent_context(str(tmp_dir), executable_path=path, args=CHROMIUM_ARGS,
                                                    headless=True, viewport={"width": 1280, "height": 760})
    return pw, browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One browser context (fresh user-data dir) for the whole module."""
    pw, context = launch_browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield context
    finally:
        context.close()
        pw.stop()


@pytest.fixture(scope="module")
def drift_policy(tmp_path_factory) -> Path:
    """A random-weight flow-MLP checkpoint of the lift task whose actions drift the TCP up (~1 cm per step):
    the cameras see the arm move, nothing is trained."""
    import gymnasium as gym
    import numpy as np
    import torch

    import robo.sim  # noqa: F401
    from robo.policies import FlowConfig, make_policy

    env = gym.make(LIFT)
    spec, high = env.unwrapped.robo_spec, env.action_space.high
    env.close()
    ds = spec["observation.state"].shape[0]
    mean = np.zeros(7)
    mean[2] = 0.01
    std = np.array([0.003, 0.003, 0.003, 0.0, 0.0, 0.0, 0.0]) + 1e-4
    stats = {"observation.state": {"min": [-1.0] * ds, "max": [1.0] * ds, "mean": [0.0] * ds, "std": [1.0] * ds},
             "action": {"min": list(np.maximum(mean - 3 * std, -high)), "max": list(np.minimum(mean + 3 * std, high)),
                        "mean": list(mean), "std": list(std)}}
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("drift") / "policy"
    make_policy("flow", FlowConfig(backbone="mlp"), spec, stats).save(out)
    return out


@pytest.fixture(scope="module")
def console_cell(tmp_path_factory) -> Path:
    return write_cell(tmp_path_factory.mktemp("ccell") / "ccell.yaml", cameras=("front",), name="ccell")
