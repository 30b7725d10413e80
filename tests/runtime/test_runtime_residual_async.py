"""Residual TD3 through a learner process and actor processes: the same spine as the embedded loop
(robo.learn.spine), the same config file, the same update-to-data schedule."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from robo.data.segments import SegmentStore
from robo.learn.evaluate import evaluate
from robo.learn.residual_td3 import load_residual_fn
from robo.policies import load_policy
from robo.runtime.launch import launch_local

pytestmark = pytest.mark.timeout(900)


def _actor_lead(store: SegmentStore, utd: float, learning_starts: int) -> int:
    """Most rows any batch's actor was ahead of its weights: rows stored before the batch minus the
    rows the weights it acted with accounted for (`policy_version` = updates = utd x (rows - starts), so
    the initial weights, version 0, are the schedule's for the first `learning_starts` rows)."""
    lead, n_before = 0, 0
    for arrays, meta in store:
        covered = learning_starts + meta["policy_version"] / utd
        lead = max(lead, n_before - int(covered))
        n_before += len(arrays["obs"])
    return lead


def test_residual_actor_learner_processes_raise_lift_success(lift_bc, lift_residual_config, tmp_path):
    """The lift learning test through a learner process + 2 actor processes with the embedded test's config
    file: success on fixed seeds rises over the base; the UTD is the config's, by the update counter."""
    root, summary = lift_bc
    base = load_policy(summary["checkpoint"])
    before = evaluate("PandaLift-v0", base, 80, seed=20_000)
    run_dir = tmp_path / "run"
    assert launch_local("td3", lift_residual_config, 2, run_dir, timeout_s=560) == 0

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg == {**cfg, **yaml.safe_load(lift_residual_config.read_text())}  # the file's values, resolved
    state = torch.load(run_dir / "checkpoint" / "state.pt", weights_only=False)
    n_rows, updates = state["counters"]["n_rows"], state["counters"]["updates"]
    assert updates == cfg["utd"] * (n_rows - cfg["learning_starts"])  # the embedded loop's schedule
    with SegmentStore(run_dir / "replay") as store:
        versions = [meta["policy_version"] for _, meta in store]
        actors = {meta["actor"] for _, meta in store}
        lead = _actor_lead(store, cfg["utd"], cfg["learning_starts"])
    assert actors == {0, 1} and len(set(versions)) >= 5  # both actors kept picking up new weights
    # held to the learner's pace: its own lag when the hold lifts, one episode (<= 50 rows) per actor, at
    # most max_actor_lead unacknowledged rows while it evaluates, the weights' publish interval (20 updates)
    assert lead <= 2 * cfg["max_actor_lead"] + 2 * 50 + 20
    # the learning curve is the learner's fixed-seed evaluation, as in the embedded loop
    steps = [e["env_steps"] for e in state["counters"]["evals"]]
    assert steps[0] == 0 and 6000 <= steps[1] < 6000 + 2 * 256  # at the first batch past each 6000 rows

    after = evaluate("PandaLift-v0", base, 80, seed=20_000, residual=load_residual_fn(run_dir))
    print(f"\n{before.summary('weakened base')}\n{after.summary('base + residual (actor/learner)')}")
    assert after.success_rate >= before.success_rate + 0.25, (before.summary("base"), after.summary("residual"))


def test_robo_train_residual_actors_cli(lift_bc, tmp_path):
    """`robo train --residual --actors 2` from the command line: one learner, two actor processes,
    rows from both, then the same final report as the embedded trainer."""
    root, summary = lift_bc
    out = tmp_path / "run"
    args = ["train", "--residual", "--actors", "2", "--out", str(out), "task=PandaLift-v0",
            f"base={summary['checkpoint']}", f"demos={root / 'demos'}", "total_env_steps=600", "learning_starts=200",
            "critic_warmup_updates=20", "batch_size=32", "actor_hidden=32", "critic_hidden=32", "num_q=2", "utd=1",
            "device=cpu", "torch_threads=1", "eval_every=300", "eval_episodes=3", "final_eval_episodes=4",
            "final_videos=1"]
    proc = subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with SegmentStore(out / "replay") as store:
        actors = {meta["actor"] for _, meta in store}
        n_rows = len(store)
    assert actors == {0, 1} and n_rows >= 600
    assert "final evaluation on PandaLift-v0, 4 episodes" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["actors"] == 2 and set(report["results"]) == {"base", "residual"}
    steps = [e["env_steps"] for e in report["learning_curve"]]
    assert steps[0] == 0 and 300 <= steps[1] < 600 and len(steps) >= 3  # fixed-seed evaluations in the learner
    assert (out / "learning_curve.png").stat().st_size > 0 and (out / "residual_actor.pt").is_file()
    assert (out / "base_vs_residual.mp4").stat().st_size > 1000
    assert "2 actor processes" in (out / "results.md").read_text()
    fn = load_residual_fn(out)
    r = fn(np.zeros((2, base_dim(summary)), np.float32), np.zeros((2, 7), np.float32))
    assert r.shape == (2, 7)


def base_dim(summary) -> int:
    return load_policy(summary["checkpoint"]).spec.state_dim
