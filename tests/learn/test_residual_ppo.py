"""Residual PPO (ResiP-style): starts exactly at the base, runs end to end, GAE/KL machinery works."""

import numpy as np
import torch

from robo.learn.residual_ppo import ALGORITHM, ResidualGaussian, ResidualPPOConfig, load_residual_fn, update
from robo.learn.spine import train
from robo.policies import load_policy


def test_mean_residual_is_zero_at_init():
    cfg = ResidualPPOConfig(hidden=32)
    net = ResidualGaussian(6, 3, cfg)
    d = net.dist(torch.randn(16, 6), torch.rand(16, 3))
    assert torch.equal(d.mean, torch.zeros(16, 3))
    assert torch.allclose(d.stddev, torch.full((16, 3), float(np.exp(-1.0))))


def test_update_moves_policy_towards_positive_advantage():
    torch.manual_seed(0)
    cfg = ResidualPPOConfig(hidden=32, update_epochs=4, n_minibatches=1, n_envs=1, rollout_steps=64, target_kl=10.0)
    net = ResidualGaussian(4, 2, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    obs, base = torch.randn(64, 4), torch.zeros(64, 2)
    sample = torch.randn(64, 2)
    with torch.no_grad():
        logp = net.dist(obs, base).log_prob(sample).sum(-1)
    adv = sample[:, 0].clone()  # samples with a large first coordinate were good
    roll = {"obs": obs, "base": base, "sample": sample, "logp": logp, "adv": adv, "ret": adv}
    update(net, opt, roll, cfg, np.random.default_rng(0))
    assert net.dist(obs, base).mean[:, 0].mean().item() > 0.05


def test_ppo_runs_end_to_end(lift_bc, tmp_path):
    root, summary = lift_bc
    base = load_policy(summary["checkpoint"])
    cfg = ResidualPPOConfig(task="PandaLift-v0", base=summary["checkpoint"], total_env_steps=256, n_envs=4,
                            rollout_steps=32, hidden=64, update_epochs=2, eval_every=256, eval_episodes=4,
                            final_eval_episodes=4, final_videos=0, torch_threads=1, device="cpu")
    state = train(ALGORITHM, cfg, tmp_path / "ppo")
    assert state["n_rows"] == 256 and state["updates"] == 2 and len(state["evals"]) == 2  # one update per rollout
    fn = load_residual_fn(tmp_path / "ppo")
    r = fn(np.zeros((3, base.spec.state_dim), np.float32), np.zeros((3, 7), np.float32))
    assert r.shape == (3, 7) and np.all(np.abs(r) < 1.0)
