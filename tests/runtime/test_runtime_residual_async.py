"""`--algo residual`: the residual TD3 learner split into a learner and actor processes (smoke run
on a real task without a base, tiny networks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("robo.sim")

from robo.config import load_config  # noqa: E402
from robo.data.segments import SegmentStore  # noqa: E402
from robo.learn.replay import FIELDS  # noqa: E402
from robo.learn.residual_td3 import ResidualTD3Config, load_residual_fn  # noqa: E402
from robo.runtime.learner import launch_local  # noqa: E402

pytestmark = pytest.mark.timeout(180)


def test_residual_learner_and_actor_processes(tmp_path):
    cfg = load_config(
        ResidualTD3Config,
        None,
        [
            "task=PandaLift-v0",
            "base=none",
            "total_env_steps=300",
            "learning_starts=100",
            "critic_warmup_updates=40",
            "batch_size=32",
            "actor_hidden=32",
            "critic_hidden=32",
            "num_q=2",
            "utd=1",
            "torch_threads=1",
            "device=cpu",
            "actor_lr=0.001",
        ],
    )
    run_dir = tmp_path / "run"
    assert launch_local(cfg, 1, run_dir=run_dir, timeout_s=150) == 0

    store = SegmentStore(run_dir / "replay")
    eps = list(store)
    assert len(store) >= 300
    arrays, meta = eps[-1]
    import gymnasium as gym

    obs_dim = gym.make("PandaLift-v0").observation_space["observation.state"].shape[0]
    assert set(FIELDS) <= set(arrays) and arrays["obs"].shape[1] == obs_dim and arrays["action"].shape[1] == 7
    assert eps[0][1]["policy_version"] == 0 and eps[-1][1]["policy_version"] > 0  # actors took new weights
    state = torch.load(run_dir / "learner" / "state.pt", weights_only=True)
    assert state["step"] >= len(store) - 100  # utd 1 after learning_starts: the update budget was used

    fn = load_residual_fn(run_dir)  # the embedded trainer's artefact, written by the async learner too
    out = fn(np.random.default_rng(0).normal(size=(4, obs_dim)).astype(np.float32), np.zeros((4, 7), np.float32))
    assert out.shape == (4, 7) and np.abs(out).max() > 0  # zero-initialised last layer has been trained
    assert np.abs(out).max() <= cfg.action_scale + 1e-6


def test_launch_local_refuses_on_policy_config(tmp_path):
    from robo.learn.residual_ppo import ResidualPPOConfig

    with pytest.raises(ValueError, match="off-policy"):
        launch_local(ResidualPPOConfig(), 1, run_dir=tmp_path)
