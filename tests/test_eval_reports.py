"""`robo eval` never overwrites or mixes an earlier evaluation (issue 21 item 4, issue 23 item 5).

Default folders are new each time and say base or residual; `--out` must be new; the files of one
evaluation appear together (a failed evaluation leaves nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from robo.commands.eval import report_folder

TASK = "PandaLift-v0"


def robo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained flow policy for PandaLift-v0 (its outcomes do not matter here, only where they go)."""
    import robo.sim  # noqa: F401
    from robo.data.stats import RunningStats, stats_to_json
    from robo.policies import make_policy
    from robo.policies.flow.config import FlowConfig

    spec = gym.make(TASK).unwrapped.robo_spec
    rng = np.random.default_rng(0)
    stats = stats_to_json({k: RunningStats.from_data(rng.normal(size=(10, spec[k].shape[0])))
                           for k in ("observation.state", "action")})
    cfg = FlowConfig(backbone="mlp", mlp_dims=(16, 16), horizon=4, n_action_steps=2, num_inference_steps=1,
                     state_feat_dim=8, time_embed_dim=8)
    run = tmp_path_factory.mktemp("run")
    make_policy("flow", cfg, spec, stats).save(run / "checkpoint")
    return run


def test_default_folders_are_new_and_say_base_or_residual(tmp_path: Path) -> None:
    base = report_folder(tmp_path, "pkg.mod:My/Task-v0", None)
    res = report_folder(tmp_path, "pkg.mod:My/Task-v0", "runs/residual/run7")
    assert base.parent == res.parent == tmp_path  # the task id's '/' and ':' make no sub-folders
    assert base.name.startswith("eval_pkg.mod_My_Task-v0__base__")
    assert res.name.startswith("eval_pkg.mod_My_Task-v0__residual-run7__")
    base.mkdir()
    assert report_folder(tmp_path, "pkg.mod:My/Task-v0", None) == base.with_name(base.name + "-2")  # same second


def test_a_second_eval_leaves_the_first_untouched(checkpoint: Path, tmp_path: Path) -> None:
    args = ("eval", "--policy", str(checkpoint), "--task", TASK, "--episodes", "2", "--videos", "0")
    assert robo(*args, cwd=tmp_path).returncode == 0
    (first,) = checkpoint.glob("eval_*")
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert set(before) == {"report.json", "success.png"}
    assert robo(*args, cwd=tmp_path).returncode == 0
    folders = sorted(checkpoint.glob("eval_*"))
    assert len(folders) == 2 and first in folders
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before


def test_out_must_be_new_and_a_failed_eval_leaves_nothing(checkpoint: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "report.json").write_text("{}")
    proc = robo("eval", "--policy", str(checkpoint), "--task", TASK, "--out", str(taken), cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert f"--out {taken} already exists" in proc.stderr
    assert [p.name for p in taken.iterdir()] == ["report.json"] and (taken / "report.json").read_text() == "{}"

    out = tmp_path / "fresh"
    proc = robo("eval", "--policy", str(checkpoint), "--task", TASK, "--episodes", "1", "--videos", "0",
                "--residual", str(tmp_path / "no_such_run"), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 1 and "no_such_run" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # neither `fresh` nor its staging folder
