"""End-to-end learning on the easy lift task: a deliberately weakened BC base, then residual TD3 lifts it.

The base is a flow BC policy trained for only 600 steps on 20 scripted demos (under-trained on
purpose: ~40% success). Residual TD3 with a small CPU budget must raise the success rate over that
base on the same evaluation seeds; a run resumed from its checkpoint continues from the saved step.
"""

import json

import numpy as np

from robo.config import load_config
from robo.data import Dataset
from robo.learn.evaluate import evaluate
from robo.learn.residual_td3 import ResidualTD3Config, load_residual_fn, train
from robo.policies import load_policy

TASK = "PandaLift-v0"


def _cfg(**kw):
    values = dict(task=TASK, total_env_steps=12000, actor_hidden=128, critic_hidden=128, num_q=4, utd=1,
                  batch_size=128, actor_lr=1e-4, critic_lr=3e-4, residual_penalty=0.1, explore_std=0.1,
                  action_scale=0.2, learning_starts=500, critic_warmup_updates=1000, eval_every=6000,
                  eval_episodes=10, final_eval_episodes=10, checkpoint_every=4000,
                  torch_threads=1, buffer_size=20_000, device="cpu")
    values.update(kw)
    return ResidualTD3Config(**values)


def test_residual_raises_success_over_weakened_base(lift_bc, tmp_path):
    root, summary = lift_bc
    base, demos = load_policy(summary["checkpoint"]), Dataset(root / "demos")
    before = evaluate(TASK, base, 80, seed=20_000)
    assert before.success_rate <= 0.75, f"the weakened base is too strong: {before.summary()}"
    state = train(_cfg(), tmp_path / "res", base, demos)
    assert state["env_steps"] == 12000
    after = evaluate(TASK, base, 80, seed=20_000, residual=load_residual_fn(tmp_path / "res"))
    print(f"\n{before.summary('weakened base')}\n{after.summary('base + residual')}")
    assert after.success_rate >= before.success_rate + 0.25, (before.summary("base"), after.summary("residual"))


def test_resume_continues_from_saved_step(lift_bc, tmp_path):
    root, summary = lift_bc
    base, demos = load_policy(summary["checkpoint"]), Dataset(root / "demos")
    cfg = _cfg(total_env_steps=1000, learning_starts=200, critic_warmup_updates=100, eval_every=10_000,
               eval_episodes=2, checkpoint_every=500)
    train(cfg, tmp_path / "run", base, demos)
    saved = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert saved["env_steps"] == 1000
    n_transitions = int(np.load(tmp_path / "run" / "checkpoint" / "replay.npz")["size"])
    cfg2 = load_config(ResidualTD3Config, tmp_path / "run" / "config.yaml", ["total_env_steps=1400"])
    state = train(cfg2, tmp_path / "run", base, demos, resume=True)
    assert state["env_steps"] == 1400
    assert state["updates"] > saved["updates"]
    resumed = int(np.load(tmp_path / "run" / "checkpoint" / "replay.npz")["size"])
    assert resumed > n_transitions  # the buffer was restored and grew, not restarted
