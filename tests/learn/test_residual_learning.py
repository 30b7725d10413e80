"""End-to-end learning on the easy lift task: a deliberately weakened BC base, then residual TD3 lifts it.

The base is a flow BC policy trained for only 600 steps on 20 scripted demos (under-trained on
purpose: ~40% success). Residual TD3 with a small CPU budget must raise the success rate over that
base on the same evaluation seeds, through the embedded loop (here) and through a learner process +
actor processes (tests/runtime/test_runtime_residual_async.py) with the same config file
(`lift_residual_config`); a run resumed from its checkpoint continues from the saved step; updates
overlapping the env steps (`overlap_updates`) keep the schedule and are reproducible.
"""

import torch

from robo.config import load_config
from robo.data.segments import SegmentStore
from robo.learn.evaluate import evaluate
from robo.learn.residual_td3 import ALGORITHM, ResidualTD3Config, load_residual_fn
from robo.learn.spine import train
from robo.policies import load_policy

TASK = "PandaLift-v0"


def test_residual_raises_success_over_weakened_base(lift_bc, lift_residual_config, tmp_path):
    root, summary = lift_bc
    base = load_policy(summary["checkpoint"])
    before = evaluate(TASK, base, 80, seed=20_000)
    assert before.success_rate <= 0.75, f"the weakened base is too strong: {before.summary()}"
    cfg = load_config(ResidualTD3Config, lift_residual_config)
    state = train(ALGORITHM, cfg, tmp_path / "res", report=False)
    assert state["n_rows"] == cfg.total_env_steps
    # the update-to-data schedule: utd critic updates per stored transition after learning_starts
    assert state["updates"] == cfg.utd * (cfg.total_env_steps - cfg.learning_starts)
    after = evaluate(TASK, base, 80, seed=20_000, residual=load_residual_fn(tmp_path / "res"))
    print(f"\n{before.summary('weakened base')}\n{after.summary('base + residual')}")
    assert after.success_rate >= before.success_rate + 0.25, (before.summary("base"), after.summary("residual"))


def test_resume_continues_from_saved_step(lift_bc, tmp_path):
    root, summary = lift_bc
    cfg = ResidualTD3Config(task=TASK, base=summary["checkpoint"], demos=str(root / "demos"), total_env_steps=1000,
                            learning_starts=200, critic_warmup_updates=100, eval_every=10_000, eval_episodes=2,
                            final_eval_episodes=2, checkpoint_every=500, actor_hidden=32, critic_hidden=32, num_q=2,
                            utd=1, batch_size=64, buffer_size=5000, torch_threads=1, device="cpu")
    train(ALGORITHM, cfg, tmp_path / "run", report=False)
    saved = torch.load(tmp_path / "run" / "checkpoint" / "state.pt", weights_only=False)
    assert saved["counters"]["n_rows"] == 1000 and saved["learner"]["agent"]["n_updates"] == 800
    with SegmentStore(tmp_path / "run" / "replay") as store:
        assert len(store) == 1000  # every transition is stored: the one resume format
    cfg2 = load_config(ResidualTD3Config, tmp_path / "run" / "config.yaml", ["total_env_steps=1400"])
    state = train(ALGORITHM, cfg2, tmp_path / "run", resume=True, report=False)
    assert state["n_rows"] == 1400 and state["updates"] == 1200  # continued, on the same schedule
    with SegmentStore(tmp_path / "run" / "replay") as store:
        assert len(store) == 1400  # the stored rows were replayed, then grew


def test_updates_overlapping_the_env_steps_keep_the_schedule_and_are_reproducible(lift_bc, tmp_path):
    """The learner's updates run in a thread while the envs step: the same count as the serial loop, and
    two runs of one seed end with identical weights (the thread shares no random stream with the envs)."""
    root, summary = lift_bc
    kw = dict(task=TASK, base=summary["checkpoint"], demos=str(root / "demos"), total_env_steps=500,
              learning_starts=200, critic_warmup_updates=100, actor_updates_per_step=0.5, eval_every=10_000,
              eval_episodes=1, final_eval_episodes=1, checkpoint_every=10_000, actor_hidden=32, critic_hidden=32,
              num_q=2, utd=1, batch_size=64, buffer_size=5000, torch_threads=1, device="cpu", explore_std=0.1)
    states, actors = {}, {}
    for name, overlap in (("a", True), ("b", True), ("serial", False)):
        states[name] = train(ALGORITHM, ResidualTD3Config(**kw, overlap_updates=overlap), tmp_path / name,
                             report=False)
        actors[name] = torch.load(tmp_path / name / "residual_actor.pt", weights_only=False)["actor"]
    assert states["a"]["updates"] == states["serial"]["updates"] == 300
    assert all(torch.equal(actors["a"][k], actors["b"][k]) for k in actors["a"])
    # the residual trained (its zero-initialised last layer moved), in both loops
    for name in ("a", "serial"):
        assert actors[name]["net.6.weight"].abs().max() > 0
