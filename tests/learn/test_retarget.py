"""`robo retarget`: Panda lift demos become G1BoxLift-v0 episodes that the G1 completes in its own sim,
recorded with the G1's observations and actions; bad sources fail with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from robo.data import Dataset
from robo.learn.demos import collect_scripted
from robo.learn.retarget import resample, retarget_dataset, source_paths
from robo.spec import ACTION, STATE


@pytest.fixture(scope="module")
def panda_demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("retarget") / "panda_lift"
    collect_scripted("PandaLift-v0", root, episodes=4, noise=0.3, seed=0)
    return root


def test_panda_lift_demos_become_g1_box_lifts(panda_demos, tmp_path):
    out = tmp_path / "g1_from_panda"
    summary = retarget_dataset(panda_demos, "G1BoxLift-v0", out, seed=50_000)
    assert summary["source_episodes"] == 4 and summary["target_success_rate"] >= 0.75
    ds = Dataset(out)
    assert ds.num_episodes == summary["saved"] >= 3 and ds.env_id == "G1BoxLift-v0"
    assert ds.spec[STATE].shape == (18,) and ds.spec[ACTION].shape == (7,)
    ep = ds.episode(0)
    assert ep["next.reward"][-1] == 1.0 and set(ep["action_source"]) == {"scripted"}
    a = np.asarray(ep[ACTION])
    assert np.all(np.abs(a[:, :6]) <= 0.02 + 1e-6) and set(np.unique(a[:, 6])) == {-1.0, 1.0}
    # the G1 followed the Panda's path: where the Panda closed its gripper, the G1 squeezed at the same
    # height relative to the object (the box's middle vs the cube's)
    src = Dataset(panda_demos)
    rel, closed, _ = source_paths(src, 0)
    rel, closed = resample(rel, closed, src.fps, 20.0)
    first_close = int(np.argmax(closed))
    state = np.asarray(ep[STATE])
    mid_z_minus_box = 0.5 * (state[:, 2] + state[:, 5]) - state[:, 9]
    first_squeeze = int(np.argmax(a[:, 6] > 0))
    assert first_squeeze >= first_close  # never before the source closed
    assert mid_z_minus_box[first_squeeze] == pytest.approx(rel[first_close, 2], abs=0.02)  # m
    meta = json.loads((out / "meta" / "retarget.json").read_text())
    assert meta["saved"] == ds.num_episodes and meta["source"] == str(panda_demos)


def test_bad_sources_fail_with_one_line(panda_demos, tmp_path):
    g1_only = tmp_path / "g1_demos"
    collect_scripted("G1BoxLift-v0", g1_only, episodes=1, noise=0.0, seed=0)
    with pytest.raises(ValueError, match="has no 'tcp_x'") as err:
        retarget_dataset(g1_only, "G1BoxLift-v0", tmp_path / "x")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="not PandaStack-v0"):
        retarget_dataset(panda_demos, "PandaStack-v0", tmp_path / "y")
    proc = subprocess.run([sys.executable, "-m", "robo.cli", "retarget", "--from", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "z")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


def test_robo_retarget_cli(panda_demos, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "robo.cli", "retarget", "--from", str(panda_demos), "--to",
                           "G1BoxLift-v0", "--out", str(out), "--max-episodes", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "retargeted 2 episodes" in proc.stdout and Dataset(out).num_episodes >= 1
