"""A task package of a user's own, installed from a temp dir, driven through every command of the CLI.

tests/sim/plugin_example is such a package (README "Your own tasks"): a Panda reach task whose scene
lives beside its code and includes robo's Panda, physics, table and cameras by name, with its own
scripted expert, registered through a `robo.tasks` entry point. `pip install` puts it into a folder of
its own here (the test's python is not changed), and the commands run with that folder on PYTHONPATH,
as they would after `pip install` into the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent / "plugin_example"
TASK = "ExampleTasks/PandaReach-v0"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example package pip-installed (from a temp copy: setuptools writes build files beside it)."""
    tmp = tmp_path_factory.mktemp("plugin")
    shutil.copytree(EXAMPLE, tmp / "src")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(tmp / "site"), str(tmp / "src")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp / "site" / "example_tasks" / "reach_scene.xml").is_file()  # the scene ships with the package
    return tmp / "site"


def robo(site: Path, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)
    assert proc.returncode == 0, f"robo {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.timeout(600)
def test_collect_train_eval_a_plugin_task(site: Path, tmp_path: Path) -> None:
    info = robo(site, tmp_path, "info").stdout
    line = next(ln for ln in info.splitlines() if TASK in ln)
    assert "example_tasks" in line and "scripted expert" in line and "no scripted" not in line

    collect = robo(site, tmp_path, "collect", "--task", TASK, "--episodes", "20", "--out", "data/reach").stdout
    assert "recorded 20 episodes" in collect and "expert success 100%" in collect

    robo(site, tmp_path, "train", "bc", "--policy", "flow", "--data", "data/reach", "--out", "runs/bc",
         "steps=400", "lr=1e-3", "warmup_steps=50", "torch_threads=1", "policy.backbone=mlp",
         "policy.mlp_dims=[128,128]", "policy.horizon=8", "policy.n_action_steps=4")
    assert json.loads((tmp_path / "runs/bc/checkpoint/train_info.json").read_text())["env_id"] == TASK

    first = robo(site, tmp_path, "eval", "--policy", "runs/bc", "--episodes", "20", "--videos", "0").stdout
    again = robo(site, tmp_path, "eval", "--policy", "runs/bc", "--episodes", "20", "--videos", "0").stdout
    reports = sorted((tmp_path / "runs/bc").glob("eval_*/report.json"))
    assert len(reports) == 2, reports  # each evaluation in a folder of its own
    assert all(r.parent.name.startswith("eval_ExampleTasks_PandaReach-v0__base__") for r in reports)
    results = [json.loads(r.read_text())["results"]["base"] for r in reports]
    assert results[0]["task"] == TASK and results[0]["n_episodes"] == 20
    assert results[0]["successes"] == results[1]["successes"]  # same seeds, same policy
    # learning happened: the goal starts >= 5 cm from the TCP, so a policy that does not reach never succeeds
    assert results[0]["success_rate"] >= 0.4, (first, again)
