"""RL-100 (robo.learn.rl100) and its offline pieces (robo.learn.offline):

- the OPE gate (fitted-Q evaluation) rejects a deliberately worse policy and accepts a better one, on a
  point-reach task where the true success of each policy is known (measured by rollouts);
- demo chunk transitions and the success filter of collected episodes;
- one offline round on the weakened lift base does not lower its success, and the run's report says
  what was estimated, accepted and measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robo.config import load_config
from robo.data import Dataset
from robo.learn.evaluate import evaluate
from robo.learn.offline import GateConfig, OPEGate, QNet, Transitions, demo_transitions
from robo.learn.rl100 import ALGORITHM, RL100Config, successful_decisions
from robo.learn.spine import train
from robo.policies import load_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
import reach_algo  # noqa: E402  (registers RoboTest/ReachFast-v0)

TASK = "PandaLift-v0"
GAMMA = 0.9


def _seek(obs: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Reach: step towards the goal (obs [p, g]) at `gain` of the full step (-gain: away from it)."""
    return np.clip(gain * (obs[..., 2:] - obs[..., :2]) / reach_algo.STEP_SIZE, -1, 1).astype(np.float32)


def _reach_data(n_episodes: int = 300, seed: int = 0) -> Transitions:
    """Behaviour: each step goal-seeking at a random gain, or uniform random (covers every action)."""
    env, rng = gym.make("RoboTest/ReachFast-v0"), np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "discount", "next_obs", "first")}
    for ep in range(n_episodes):
        o, _ = env.reset(seed=seed + ep)
        t = 0
        while True:
            a = _seek(o["observation.state"], rng.uniform(-1, 1)) if rng.random() < 0.5 else rng.uniform(-1, 1, 2)
            o2, r, term, trunc, _ = env.step(np.asarray(a, np.float32))
            for k, v in (("obs", o["observation.state"][None]), ("action", a), ("reward", r),
                         ("discount", 0.0 if term else GAMMA), ("next_obs", o2["observation.state"][None]),
                         ("first", t == 0)):
                cols[k].append(np.asarray(v, np.float32))
            t += 1
            if term or trunc:
                break
            o = o2
    return Transitions(**{k: torch.as_tensor(np.stack(v)) for k, v in cols.items()})


def _true_success(gain: float, n: int = 200) -> float:
    env = gym.make("RoboTest/ReachFast-v0")
    wins = 0
    for ep in range(n):
        o, _ = env.reset(seed=50_000 + ep)
        while True:
            o, _, term, trunc, _ = env.step(_seek(o["observation.state"], gain))
            if term or trunc:
                wins += int(term)
                break
    return wins / n


def test_ope_gate_rejects_a_worse_policy_and_accepts_a_better_one():
    torch.manual_seed(0)
    data = _reach_data()
    gate = OPEGate(data, GateConfig(steps=2000, hidden=128, seed=0), lambda: QNet(nn.Identity(), 4, 2, 128, 2), ta=1)
    gains = {"better": 1.0, "incumbent": 0.12, "worse": -0.5}  # full step to the goal, a slow one, away from it
    truth = {k: _true_success(g) for k, g in gains.items()}
    assert truth["better"] > truth["incumbent"] + 0.2 > truth["worse"] + 0.2  # the known answer
    est = {k: gate.estimate(lambda w, g=g: torch.as_tensor(_seek(w[:, -1].numpy(), g))) for k, g in gains.items()}
    print(f"\ntrue success {truth}\nFQE estimates {est}")
    assert est["better"] > est["incumbent"] > est["worse"]  # ordered as the truth
    assert gate.decide(est["better"], est["incumbent"]).accepted
    assert not gate.decide(est["worse"], est["incumbent"]).accepted
    assert not gate.decide(est["incumbent"], est["incumbent"]).accepted  # no change without the margin


def test_demo_transitions_and_the_success_filter(lift_bc):
    root, summary = lift_bc
    base, ds = load_policy(summary["checkpoint"]), Dataset(root / "demos")
    ta, gamma = base.config.n_action_steps, 0.99
    tr = demo_transitions(ds, base, ta, gamma)
    assert len(tr) == ds.num_frames  # successful demos: a chunk starts at every frame
    assert int(tr.first.sum()) == ds.num_episodes
    terminal = tr.discount == 0
    assert int(terminal.sum()) == ds.num_episodes * ta  # the last ta frames' chunks reach the success
    assert torch.all(tr.reward[terminal] > 0) and torch.all(tr.reward[~terminal] == 0)
    assert tr.action.shape == (len(tr), ta * base.action_dim) and tr.action.abs().max() <= 1.0
    # collected rows: env 0 succeeds in its second episode, env 1 fails (truncated) then runs on
    done = np.array([0, 0, 1, 1, 0, 0, 1, 0], np.float32)  # slot-major: rows (slot, env) = 0:(0,0) 1:(0,1) ...
    disc = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.0, 0.9], np.float32)
    reward = np.array([0, 0, 0, 0, 0, 0, 1, 0], np.float32)
    keep = successful_decisions({"done": done, "discount": disc, "reward": reward}, n_envs=2)
    # env 0: rows 0, 2 (ended truncated at row 2: failed), then 4, 6 (terminal with reward: success)
    # env 1: rows 1, 3 (ended at 3, failed), then 5, 7 (still running: left out)
    assert keep.tolist() == [False, False, False, False, True, False, True, False]


def test_one_offline_round_on_lift_does_not_lower_success_and_reports_it(lift_bc, tmp_path, capsys):
    root, summary = lift_bc
    cfg = load_config(RL100Config, None, [
        f"task={TASK}", f"base={summary['checkpoint']}", f"demos={root / 'demos'}", "device=cpu", "torch_threads=1",
        "total_env_steps=1600", "n_envs=8", "rollout_chunks=25", "n_minibatches=2", "offline_rounds=1",
        "iql_steps=600", "offline_steps=300", "ope_every=100", "ope_steps=600", "offline_lr=1e-4",
        "bc_retrain_steps=300", "bc_from_scratch=false", "round_eval_episodes=10", "eval_every=1000000",
        "eval_episodes=2", "final_eval_episodes=10", "final_videos=0", "checkpoint_every=1000000"])
    train(ALGORITHM, cfg, tmp_path / "run", report=True)
    err = capsys.readouterr().err  # the round's progress line names its phases and ends on the planned total
    assert "rl100 round 0 1/" in err and "phase FQE" in err and "rl100 round 0 4200/4200 (100%) | phase done" in err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    (rnd,) = report["rounds"]
    assert rnd["chosen"] and isinstance(rnd["accepted"], bool)
    assert rnd["transitions"] == Dataset(root / "demos").num_frames + 200  # every demo frame + the 200 decisions
    assert {"estimate", "measured"} <= rnd["incumbent"].keys() and 0 <= rnd["measured"] <= 1
    assert len(rnd["candidates"]) == 3 and all({"estimate", "accepted"} <= c.keys() for c in rnd["candidates"])
    assert "bc_retrain" in rnd and rnd["bc_retrain"]["windows"] > 0
    results = (tmp_path / "run" / "results.md").read_text()
    assert "RL-100 offline rounds" in results and rnd["chosen"] in results
    before = evaluate(TASK, load_policy(summary["checkpoint"]), 40, seed=20_000)
    after = evaluate(TASK, ALGORITHM.load_policy(tmp_path / "run"), 40, seed=20_000)
    print(f"\nround 0: {rnd['chosen']} (estimate {rnd['estimate']:.3f} vs incumbent {rnd['incumbent']['estimate']:.3f})"
          f"\n{before.summary('base')}\n{after.summary('after one offline round')}")
    if not rnd["accepted"]:  # the incumbent is kept as it was: the same policy, the same episodes
        assert after.successes == before.successes
    assert after.success_rate >= before.success_rate - 0.05, (before.summary("base"), after.summary("rl100"))
