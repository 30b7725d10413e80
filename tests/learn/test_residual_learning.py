"""End-to-end learning on the easy lift task: demos -> BC base -> (weakened) -> residual TD3 lifts success.

The base is a flow BC policy trained on scripted demos, then deliberately weakened by a constant
action bias (within the residual's reach). Residual TD3 with a small budget must raise the success
rate over the weakened base on the same evaluation seeds; a run resumed from its checkpoint continues
from the saved step.
"""

import json

import numpy as np
import pytest
import torch

from robo.config import load_config
from robo.data import Dataset
from robo.learn.bc import BCTrainConfig, train_bc
from robo.learn.demos import collect_scripted
from robo.learn.evaluate import evaluate
from robo.learn.residual_td3 import ResidualTD3Config, load_residual_fn, train
from robo.policies import load_policy, make_config

TASK = "PandaLift-v0"


class BiasedPolicy(torch.nn.Module):
    """A BC policy whose chunks are shifted by a constant raw-unit bias (a deliberately weakened base)."""

    def __init__(self, policy, bias):
        super().__init__()
        self.policy, self.bias = policy, torch.as_tensor(bias, dtype=torch.float32)
        self.config, self.stats, self.spec = policy.config, policy.stats, policy.spec

    def predict_chunk(self, obs, **kw):
        return self.policy.predict_chunk(obs, **kw) + self.bias


@pytest.fixture(scope="module")
def lift_base(tmp_path_factory):
    root = tmp_path_factory.mktemp("lift")
    collect_scripted(TASK, root / "demos", episodes=20, noise=0.0, seed=0)
    cfg = BCTrainConfig(data=str(root / "demos"), steps=600, batch_size=64, torch_threads=1)
    summary = train_bc(cfg, "flow", make_config("flow", None, ["backbone=mlp", "mlp_dims=[256,256,256]"]),
                       root / "bc")
    assert summary["loss_last50"] < 0.5 * summary["loss_first50"]  # BC learned
    base = load_policy(summary["checkpoint"])
    bias = np.zeros(7, np.float32)
    bias[0] = 0.0024  # m per step in x: 0.08 of the half-range 0.03 m, inside the residual's 0.1 bound
    return root, BiasedPolicy(base, bias), Dataset(root / "demos")


def _cfg(**kw):
    values = dict(task=TASK, total_env_steps=3000, actor_hidden=128, critic_hidden=128, num_q=4, utd=1,
                  batch_size=128, actor_lr=3e-4, critic_lr=3e-4, learning_starts=500, critic_warmup_updates=300,
                  eval_every=1500, eval_episodes=20, final_eval_episodes=20, checkpoint_every=1000,
                  torch_threads=1, buffer_size=20_000, device="cpu")
    values.update(kw)
    return ResidualTD3Config(**values)


def test_residual_raises_success_over_weakened_base(lift_base):
    root, base, demos = lift_base
    before = evaluate(TASK, base, 30, seed=10_000)
    cfg = _cfg()
    state = train(cfg, root / "res", base, demos)
    assert state["env_steps"] == cfg.total_env_steps
    after = evaluate(TASK, base, 30, seed=10_000, residual=load_residual_fn(root / "res"))
    assert before.success_rate <= 0.7, f"weakened base too strong ({before.success_rate})"
    assert after.success_rate >= before.success_rate + 0.2, (before.summary("base"), after.summary("residual"))


def test_resume_continues_from_saved_step(lift_base, tmp_path):
    root, base, demos = lift_base
    cfg = _cfg(total_env_steps=1000, learning_starts=200, critic_warmup_updates=100, eval_every=10_000,
               eval_episodes=2, checkpoint_every=500)
    train(cfg, tmp_path / "run", base, demos)
    saved = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert saved["env_steps"] == 1000
    n_transitions = np.load(tmp_path / "run" / "checkpoint" / "replay.npz")["size"]
    cfg2 = load_config(ResidualTD3Config, tmp_path / "run" / "config.yaml", ["total_env_steps=1400"])
    state = train(cfg2, tmp_path / "run", base, demos, resume=True)
    assert state["env_steps"] == 1400
    assert state["updates"] > saved["updates"]
    resumed = np.load(tmp_path / "run" / "checkpoint" / "replay.npz")["size"]
    assert resumed > n_transitions  # the buffer was restored and grew, not restarted
