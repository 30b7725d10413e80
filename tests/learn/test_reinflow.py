"""ReinFlow (robo.learn.reinflow) on the lift task, with the shared chunk explorer (robo.learn.chain_rl):

- the chain's log-probabilities are deterministic, the learner recomputes the actor's numbers, the
  ratio of the first PPO minibatch is 1 (ReinFlow's own sanity check), and an update makes chains of
  positive advantage more likely than those of negative advantage;
- rollouts are slot-aligned: n_envs * rollout_chunks rows, chunks closed at episode ends, windows that
  continue from one decision to the next;
- `robo train --algo reinflow` (no --residual) runs RL and leaves an ordinary checkpoint that `robo eval`,
  `robo serve` and a residual's base take;
- with its CPU profile and a small budget, ReinFlow raises the weakened lift base's success on fixed
  evaluation seeds (the learning test).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robo.config import load_config
from robo.learn.algo import load_rl_config
from robo.learn.chain_rl import gae
from robo.learn.reinflow import ALGORITHM, ReinFlowConfig
from robo.learn.spine import Collector, prepare, train
from robo.policies import load_policy
from robo.spec import STATE

TASK = "PandaLift-v0"


def _cfg(lift_bc, *more: str) -> ReinFlowConfig:
    root, summary = lift_bc
    return load_config(ReinFlowConfig, None, [
        f"task={TASK}", f"base={summary['checkpoint']}", f"demos={root / 'demos'}", "device=cpu", "torch_threads=1",
        "final_videos=0", "eval_episodes=2", "final_eval_episodes=2", "checkpoint_every=1000000", *more])


def _rollout(cfg, setup, weights, seed: int) -> dict[str, np.ndarray]:
    collector = Collector(ALGORITHM, cfg, setup.base, seed=seed)
    try:
        collector.load_weights(weights)
        rows = None
        while rows is None:
            rows = collector.step().rows
        return rows
    finally:
        collector.close()


def test_chain_log_prob_is_deterministic_and_the_first_minibatch_ratio_is_one(lift_bc, tmp_path):
    cfg = _cfg(lift_bc, "n_envs=2", "rollout_chunks=4", "n_minibatches=2", "update_epochs=2")
    setup = prepare(ALGORITHM, cfg, tmp_path / "run")
    learner = ALGORITHM.learner(setup)
    weights = learner.weights()  # numpy arrays, as they travel to actor processes
    first, again = _rollout(cfg, setup, weights, seed=5), _rollout(cfg, setup, weights, seed=5)
    for key in first:  # same seed, same weights: the same chains and the same log-probabilities
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    assert len(first["obs"]) == cfg.n_envs * cfg.rollout_chunks
    obs = {STATE: torch.as_tensor(first["obs"])}
    chains = torch.as_tensor(first["samples"]).transpose(0, 1)
    with torch.no_grad():
        lp1 = learner.policy.chain_log_prob(obs, chains, learner.noise, per_step=True).T
        lp2 = learner.policy.chain_log_prob(obs, chains, learner.noise, per_step=True).T
    assert torch.equal(lp1, lp2)  # recomputing is deterministic
    # the learner's recomputation is the actor's number (each entry sums ~40 Gaussian log-densities)
    np.testing.assert_allclose(lp1.numpy(), first["logp"], rtol=1e-5, atol=2e-3)
    # advantages of known sign (a short lift rollout ends no episode, so its own are all 0): the update
    # must make the chains marked good more likely than those marked bad
    good = np.arange(len(first["adv"])) % 2 == 0
    learner.add({**first, "adv": np.where(good, 1.0, -1.0).astype(np.float32)})
    metrics = learner.update()
    assert metrics["ratio_dev_first"] < 1e-5, metrics  # same weights before the first step: ratio 1
    with torch.no_grad():
        moved = learner.policy.chain_log_prob(obs, chains, learner.noise, per_step=True).T
    gain = (moved - lp1).sum(1)  # (B,) change of each chain's log-probability
    assert gain.abs().max() > 1e-3  # the update did move the policy ...
    assert gain[good].mean() > gain[~good].mean(), gain  # ... towards the positive advantages
    setup.view.close()


def test_rollouts_are_slot_aligned_and_windows_continue(lift_bc, tmp_path):
    cfg = _cfg(lift_bc, "n_envs=2", "rollout_chunks=16", "n_minibatches=2")
    setup = prepare(ALGORITHM, cfg, tmp_path / "run")
    rows = _rollout(cfg, setup, ALGORITHM.learner(setup).weights(), seed=1)
    n, ta, gamma = cfg.n_envs, setup.base.config.n_action_steps, cfg.gamma
    assert len(rows["obs"]) == n * cfg.rollout_chunks  # one decision per env per slot
    assert rows["done"].sum() >= 2  # 128 steps per env: lift episodes (<= 50 steps) end inside the rollout
    for i in range(n):
        seq = range(i, len(rows["obs"]), n)  # env i's decisions in time order
        for a, b in zip(seq, list(seq)[1:]):
            if rows["done"][a]:
                assert rows["first"][b] == 1  # the next episode's first decision
                assert rows["discount"][a] == 0 or rows["discount"][a] >= gamma**ta - 1e-6  # terminal, or cut short
            else:
                assert rows["discount"][a] == pytest.approx(gamma**ta)  # a whole chunk
                np.testing.assert_array_equal(rows["next_obs"][a], rows["obs"][b])  # the window continues
                assert rows["first"][b] == 0
    success = rows["done"].astype(bool) & (rows["discount"] == 0)
    assert np.all(rows["reward"][success] > 0) and np.all(rows["reward"][~success] == 0)  # sparse lift reward


def test_gae_over_decisions_by_hand():
    reward = np.array([[0.0], [0.0], [1.0], [0.0]], np.float32)
    disc = np.array([[0.5], [0.5], [0.0], [0.5]], np.float32)
    done = np.array([[0.0], [0.0], [1.0], [0.0]], np.float32)
    value = np.array([[0.1], [0.2], [0.3], [0.4]], np.float32)
    next_value = np.array([[0.2], [0.3], [9.0], [0.6]], np.float32)  # 9: after the termination, unused
    adv = gae(reward, disc, done, value, next_value, lam=0.5)
    d = [0.5 * 0.2 - 0.1, 0.5 * 0.3 - 0.2, 1.0 - 0.3, 0.5 * 0.6 - 0.4]
    a2 = d[2]
    a1 = d[1] + 0.5 * 0.5 * a2
    a0 = d[0] + 0.5 * 0.5 * a1
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2, d[3]], rtol=1e-6)


def test_robo_train_algo_reinflow_leaves_an_ordinary_checkpoint(lift_bc, tmp_path, monkeypatch, capsys):
    from robo.cli import main
    from robo.commands.serve import load_any_policy
    from robo.learn.pipeline import DefaultBaseConfig, resolve_base

    root, summary = lift_bc
    monkeypatch.setenv("ROBO_CACHE", str(tmp_path / "cache"))  # nothing may fall back to the default base
    tiny = ["n_envs=2", "rollout_chunks=5", "n_minibatches=2", "update_epochs=1", "total_env_steps=160",
            "eval_every=100000", "eval_episodes=2", "final_eval_episodes=2", "final_videos=0", "device=cpu",
            "torch_threads=1"]
    run = tmp_path / "rf"  # in-process CLI (the same parser and dispatch as the console script)
    assert main(["train", "--algo", "reinflow", "--base", str(summary["checkpoint"]), "--task", TASK,
                 "--out", str(run), *tiny]) == 0  # no --residual: --algo reinflow starts RL
    assert json.loads((run / "run.json").read_text())["kind"] == "policy"
    results = (run / "results.md").read_text()
    assert "fine-tuned policy" in results and f"robo eval --policy {run / 'policy'}" in results
    policy = load_policy(run / "policy")  # an ordinary checkpoint...
    assert policy.config.name == "flow" and not hasattr(policy, "noise")
    assert type(load_any_policy(str(run))).__name__ == "FlowPolicy"  # ... `robo serve --policy <run>` takes
    tuned, dataset, ckpt, _ = resolve_base(TASK, str(run), "", DefaultBaseConfig())  # ... and a residual's base
    assert ckpt == run / "policy" and dataset is not None and dataset.num_episodes == 20
    capsys.readouterr()
    ev = ["eval", "--residual", str(run), "--episodes", "2", "--videos", "0", "--out", str(tmp_path / "ev")]
    assert main(ev) == 0
    assert "reinflow on PandaLift-v0: success" in capsys.readouterr().out


def test_reinflow_raises_the_weakened_lift_base_over_fixed_seeds(lift_bc, tmp_path):
    """The CPU profile as a user gets it (one noised denoising step, sigma in [0.2, 0.5], actor_lr 1e-5),
    48k env steps: 30 PPO iterations of 1,600 steps. The run's final evaluation puts the base and the
    fine-tuned policy on the same 80 seeds (measured with training seeds 0 / 1 / 2: 33.8% -> 45.0 / 53.8
    / 47.5%, configs/train/reinflow_cpu.yaml)."""
    root, summary = lift_bc
    run = tmp_path / "rf"
    cfg = load_rl_config(ALGORITHM, None, [
        f"task={TASK}", f"base={summary['checkpoint']}", f"demos={root / 'demos'}", "device=cpu",
        "total_env_steps=48000", "eval_every=1000000", "checkpoint_every=1000000", "final_eval_episodes=80",
        "final_videos=0"], profile="cpu")
    assert cfg.noise_steps == 1 and cfg.sigma_min == 0.2 and cfg.actor_lr == 1e-5  # the profile under test
    state = train(ALGORITHM, cfg, run)
    ta = load_policy(summary["checkpoint"]).config.n_action_steps  # env steps per row
    assert state["updates"] == cfg.total_env_steps // (cfg.batch_rows * ta)  # one PPO iteration per rollout
    results = json.loads((run / "report.json").read_text())["results"]
    before, after = results["base"], results["residual"]  # the fine-tuned policy's row
    print(f"\nweakened base {before['success_rate']:.1%} -> ReinFlow {after['success_rate']:.1%}")
    fixed = sum(not b and a for b, a in zip(before["successes"], after["successes"]))
    broken = sum(b and not a for b, a in zip(before["successes"], after["successes"]))
    assert after["success_rate"] >= before["success_rate"] + 0.08, (before["success_rate"], after["success_rate"])
    assert fixed >= 2 * broken, (fixed, broken)  # seed by seed, it mends far more episodes than it breaks


def test_the_actor_learning_rate_decays_by_cosine_to_its_fraction():
    cfg = ReinFlowConfig(task=TASK, base="some/checkpoint", actor_lr=2e-5, actor_lr_decay_to=0.44)
    lrs = [cfg.actor_lr_at(u, 30) for u in range(30)]
    assert lrs[0] == pytest.approx(2e-5) and lrs[-1] == pytest.approx(0.44 * 2e-5)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # never rises
    assert ReinFlowConfig(task=TASK, base="x", actor_lr_decay_to=1.0).actor_lr_at(7, 30) == pytest.approx(4.5e-5)
    with pytest.raises(ValueError, match="actor_lr_decay_to"):
        ReinFlowConfig(task=TASK, base="x", actor_lr_decay_to=1.5)
