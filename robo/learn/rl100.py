"""RL-100 (Lei et al. 2025): offline rounds gated by OPE, then online PPO, on the chunk policy itself: `--algo rl100`.

Reads top to bottom: config -> fixed chain noise -> BC retrain data -> the offline round -> learner.
The actor side, the rows and the artefact are shared with ReinFlow (robo.learn.chain_rl); the IQL
critics and the OPE gate (fitted-Q evaluation, and why) are in robo.learn.offline.

Stage 2, offline rounds. Update r (< `offline_rounds`) follows the r-th collection of n_envs *
rollout_chunks decisions by the current policy (noisy chain, fixed sigma):
  1. data = the demos as chunk transitions (every frame) + every decision collected so far;
  2. BC retrain (`bc_retrain_steps` > 0): the policy re-fit to the demos + the collected episodes that
     succeeded (from scratch with `bc_from_scratch`, as RL-100 does, else continued), kept only if the
     gate estimates it better than the incumbent;
  3. IQL critics (Q twice, V, expectile) on the data, warm-started from the last round;
  4. `offline_steps` PPO-clip updates on the per-denoising-step log-ratios at data states, with chains
     sampled from the old policy and the IQL advantage min Q - V (normalised over the batch); every
     `ope_every` updates the gate compares the candidate with the best so far, and an accepted
     candidate becomes the best and the new old policy (BPPO / Uni-O4);
  5. the best policy is published and collects the next round's data. The round's decision (each
     candidate's estimate, accepted or not, and the measured success of the incumbent and the chosen
     policy when `round_eval_episodes` > 0) goes into the run's report.
Stage 3, online: every later update is one PPO iteration over a rollout with per-step ratios
(robo.learn.reinflow.ppo_update, `per_step=True`), the value net starting from IQL's V.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from robo.config import check_range
from robo.learn.algo import Algorithm, EnvInfo
from robo.learn.chain_rl import (
    ChainLearner,
    ChainRLConfig,
    ChunkExplorer,
    executed_actions,
    load_tuned_policy,
    noise_mask,
    step_log_probs,
)
from robo.learn.common import ProgressLine
from robo.learn.offline import (
    GateConfig,
    IQLCritics,
    OPEGate,
    QNet,
    Transitions,
    demo_transitions,
    fit_iql,
    policy_actions,
    row_transitions,
)
from robo.learn.reinflow import chain_surrogate, ppo_update
from robo.spec import ACTION, STATE


# ==================================================================================== config
@dataclass
class RL100Config(ChainRLConfig):
    """RL-100's hyper-parameters (its YAML / launcher where they transfer; see the anchors note)."""

    offline_rounds: int = 3
    """Offline rounds (stage 2); every later update is an online PPO iteration (stage 3)."""
    rollout_chunks: int = 50
    """Decisions per env collected per round / per online iteration."""
    chain_std: float = 0.05
    """Fixed noise std of each denoising step (normalised action units), when collecting and in the
    log-ratios (RL-100's stochastic DDIM clips its std at >= 0.0067; flow: CPS noise)."""
    expectile: float = 0.7
    """IQL expectile tau (RL-100's YAML: 0.7; its 2-D launcher 0.9)."""
    iql_steps: int = 3000
    """IQL updates per round."""
    critic_lr: float = 3e-4
    """IQL and online value learning rate."""
    critic_tau: float = 0.005
    """Polyak rate of the IQL target Qs."""
    critic_batch: int = 256
    """IQL batch size."""
    offline_steps: int = 800
    """Policy updates per round (RL-100: bppo_steps 8000)."""
    offline_batch: int = 256
    """Data states per policy update (RL-100: 512)."""
    offline_lr: float = 1e-5
    """Policy learning rate offline (RL-100's YAML: 1e-5)."""
    offline_clip: float = 0.25
    """PPO clip of the per-step ratios offline (RL-100: 0.25)."""
    ope_every: int = 200
    """Policy updates between OPE checks (RL-100: 50)."""
    ope_steps: int = 2000
    """FQE updates per estimate."""
    ope_margin: float = 0.05
    """Relative improvement the gate needs (the paper's ~5%)."""
    bc_retrain_steps: int = 8000
    """BC steps of the per-round retrain on demos + successful collected episodes (0 = no retrain)."""
    bc_from_scratch: bool = True
    """Retrain from a fresh initialisation (RL-100) instead of continuing from the incumbent."""
    bc_lr: float = 3e-4
    """BC retrain learning rate (constant)."""
    bc_batch: int = 64
    """BC retrain batch size."""
    round_eval_episodes: int = 20
    """Episodes measuring the incumbent and the chosen policy of each round in sim (0 = estimates only)."""
    update_epochs: int = 10
    """Online PPO epochs per rollout (RL-100: K_epochs 10)."""
    n_minibatches: int = 16
    """Online minibatches per epoch (RL-100: 2048 / 128)."""
    clip_coef: float = 0.2
    """Online PPO clip (RL-100: 0.2)."""
    actor_lr: float = 3e-6
    """Online policy learning rate (RL-100: 3e-6)."""
    vf_coef: float = 0.5
    """Online value-loss weight."""
    ent_coef: float = 0.0
    """Unused (fixed noise has a constant entropy); kept for the shared PPO update."""
    target_kl: float = 0.02
    """Online: stop an update's epochs beyond this approximate KL (RL-100's KL target)."""
    grad_clip: float = 0.5
    """Gradient-norm clip (RL-100: 0.5)."""
    profile: Literal["gpu", "cpu"] = "gpu"
    """Recorded profile name."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("offline_rounds", self.offline_rounds, 0, None)
        check_range("chain_std", self.chain_std, 1e-4, None)
        check_range("expectile", self.expectile, 0.5, 1.0)
        for name in ("iql_steps", "critic_batch", "offline_batch", "ope_every", "ope_steps", "bc_batch",
                     "update_epochs", "n_minibatches"):
            check_range(name, getattr(self, name), 1, None)
        for name in ("offline_steps", "bc_retrain_steps", "round_eval_episodes"):
            check_range(name, getattr(self, name), 0, None)
        check_range("ope_margin", self.ope_margin, 0.0, None)
        check_range("clip_coef", self.clip_coef, 0.0, 1.0)
        check_range("offline_clip", self.offline_clip, 0.0, 1.0)
        if self.batch_rows % self.n_minibatches:
            raise ValueError(f"n_minibatches={self.n_minibatches} must divide n_envs * rollout_chunks "
                             f"= {self.batch_rows}")


# ==================================================================================== chain noise
class FixedNoise:
    """sigma on the noised entries (chain_rl.noise_mask, (K, T, Da)): noise(k, x, cond) -> (B, T, Da)."""

    def __init__(self, sigma: float, mask: Tensor) -> None:
        self.sigma, self.mask = sigma, mask

    def __call__(self, k: int, x: Tensor, cond: Tensor) -> Tensor:
        return (self.sigma * self.mask[k].to(x.device)).expand_as(x)


# ==================================================================================== BC retrain data
def successful_decisions(rollout: dict[str, np.ndarray], n_envs: int) -> np.ndarray:
    """(S * N,) bool: decisions of episodes that succeeded (terminal with reward) within this rollout
    (slot-major rows, robo.learn.chain_rl); an episode still running at the rollout's end is left out."""
    keep = np.zeros(len(rollout["done"]), bool)
    for i in range(n_envs):
        episode: list[int] = []
        for r in range(i, len(keep), n_envs):
            episode.append(r)
            if rollout["done"][r] > 0:
                if rollout["discount"][r] == 0 and rollout["reward"][r] > 0:
                    keep[episode] = True
                episode = []
    return keep


def bc_windows(policy: Any, dataset: Any, rollouts: list[dict[str, np.ndarray]], n_envs: int, ta: int) -> dict:
    """BC training windows (numpy): the demos' and the executed chunks of successful collected episodes
    (the rest of their predicted window masked as padding)."""
    c = policy.config
    parts = []
    if dataset is not None:
        win = dataset.windows(c.n_obs_steps, c.horizon)
        items = [win[i] for i in range(len(win))]
        parts.append({k: np.stack([it[k] for it in items]) for k in (STATE, ACTION, "action_is_pad")})
    for roll in rollouts:
        keep = successful_decisions(roll, n_envs)
        if not keep.any():
            continue
        with torch.no_grad():
            actions = policy.action_norm.inverse(torch.as_tensor(roll["samples"][keep][:, -1]).clamp(-1, 1)).numpy()
        pad = np.ones((int(keep.sum()), c.horizon), bool)
        pad[:, c.n_obs_steps - 1 : c.n_obs_steps - 1 + ta] = False
        parts.append({STATE: roll["obs"][keep], ACTION: actions.astype(np.float32), "action_is_pad": pad})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def bc_retrain(policy: Any, windows: dict[str, np.ndarray], cfg: RL100Config, device: torch.device,
               rng: np.random.Generator, on_step: Callable[[], None] | None = None) -> Any:
    """The policy re-fit to `windows` (a fresh initialisation with `bc_from_scratch`); `on_step` is called
    after each step."""
    new = copy.deepcopy(policy)
    if cfg.bc_from_scratch:
        for m in new.modules():
            if m is not new and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    opt = torch.optim.AdamW(new.parameters(), lr=cfg.bc_lr)
    n = len(windows[STATE])
    for _ in range(cfg.bc_retrain_steps):
        idx = rng.integers(0, n, cfg.bc_batch)
        loss = new.compute_loss({k: torch.as_tensor(v[idx], device=device) for k, v in windows.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(new.parameters(), 10.0)
        opt.step()
        if on_step is not None:
            on_step()
    return new.eval()


class RoundProgress:
    """One progress line per offline round: every BC, IQL, policy and FQE step counts one, the phase named."""

    def __init__(self, cfg: RL100Config, round_index: int) -> None:
        checks = -(-cfg.offline_steps // cfg.ope_every)  # every ope_every updates, and at the last
        estimates = 1 + (cfg.bc_retrain_steps > 0) + checks
        total = cfg.bc_retrain_steps + cfg.iql_steps + cfg.offline_steps + estimates * cfg.ope_steps
        self.line, self.done, self.phase = ProgressLine(total, f"rl100 round {round_index}"), 0, ""

    def step(self) -> None:
        self.done += 1
        self.line.update(self.done, {"phase": self.phase})

    def close(self) -> None:
        self.line.update(self.done, {"phase": "done"}, force=True)
        self.line.close()


# ==================================================================================== actor side
class RL100Explorer(ChunkExplorer):
    """The shared chunk explorer with a fixed chain noise."""

    algo_name = "rl100"

    def __init__(self, cfg: RL100Config, env: EnvInfo, seed: int) -> None:
        super().__init__(cfg, env, seed)
        self.fixed = FixedNoise(cfg.chain_std, noise_mask(self.policy, self.ta, cfg.noise_steps))

    def noise(self) -> FixedNoise:
        return self.fixed


# ==================================================================================== learner side
class RL100Learner(ChainLearner):
    """Offline rounds, then online PPO iterations, one update per collected rollout (module docstring)."""

    algo_name = "rl100"

    def __init__(self, setup: Any) -> None:
        super().__init__(setup)
        cfg: RL100Config = self.cfg
        self.noise = FixedNoise(cfg.chain_std, noise_mask(self.policy, self.ta, cfg.noise_steps))
        self.critics = IQLCritics(self.policy, self.ta, cfg.value_hidden, cfg.value_layers).to(self.device)
        self.opt = torch.optim.Adam([{"params": self.policy.parameters(), "lr": cfg.actor_lr},
                                     {"params": self.value.parameters(), "lr": cfg.critic_lr}])
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.rollouts: list[dict[str, np.ndarray]] = []  # every collected rollout (the offline data)
        self.rounds: list[dict[str, Any]] = []
        self._demos: Transitions | None = None

    # ------------------------------------------------------------------------------- data
    def demos(self) -> Transitions:
        if self._demos is None:
            ds = self.setup.dataset
            self._demos = (demo_transitions(ds, self.policy, self.ta, self.cfg.gamma) if ds is not None
                           else None)
        return self._demos

    def data(self) -> Transitions:
        to = self.policy.config.n_obs_steps
        parts = [row_transitions(r, to, self.ta) for r in self.rollouts]
        if self.demos() is not None:
            parts.insert(0, self.demos())
        return Transitions.cat(parts).to(self.device)

    # ------------------------------------------------------------------------------- the round
    def measure(self, policy: Any) -> float | None:
        if not self.cfg.round_eval_episodes:
            return None
        from robo.learn.evaluate import evaluate

        res = evaluate(self.cfg.task, policy, self.cfg.round_eval_episodes, seed=self.cfg.eval_seed,
                       stats=self.setup.view.normalizer_stats, n_action_steps=self.cfg.n_action_steps or None,
                       progress=f"rl100 round {len(self.rounds)} measure")
        return res.success_rate

    def offline_round(self) -> dict[str, float]:
        cfg: RL100Config = self.cfg
        data = self.data()
        gate = OPEGate(data, GateConfig(steps=cfg.ope_steps, margin=cfg.ope_margin, seed=cfg.seed + len(self.rounds),
                                        hidden=cfg.value_hidden),
                       lambda: QNet(self.policy.state_norm, self.policy.config.n_obs_steps * self.policy.state_dim,
                                    self.ta * self.policy.action_dim, cfg.value_hidden, 2), self.ta)

        progress = RoundProgress(cfg, len(self.rounds))

        def estimate(policy: Any) -> float:
            progress.phase = "FQE"
            return gate.estimate(lambda obs: policy_actions(policy, obs, self.ta, cfg.seed), progress.step)

        record: dict[str, Any] = {"round": len(self.rounds), "transitions": len(data),
                                  "collected_decisions": sum(len(r["obs"]) for r in self.rollouts)}
        best, best_j, chosen = self.policy, estimate(self.policy), "incumbent"
        record["incumbent"] = {"estimate": best_j, "measured": self.measure(self.policy)}
        if cfg.bc_retrain_steps:
            windows = bc_windows(self.policy, self.setup.dataset, self.rollouts, cfg.n_envs, self.ta)
            progress.phase = "BC retrain"
            retrained = bc_retrain(self.policy, windows, cfg, self.device, self.rng, progress.step)
            decision = gate.decide(estimate(retrained), best_j)
            record["bc_retrain"] = {"windows": len(windows[STATE]), "estimate": decision.candidate,
                                    "accepted": decision.accepted}
            if decision.accepted:
                best, best_j, chosen = retrained, decision.candidate, "bc retrain"
        progress.phase = "IQL"
        metrics = fit_iql(self.critics, data, cfg.iql_steps, cfg.critic_batch, cfg.critic_lr, cfg.expectile,
                          cfg.critic_tau, self.rng, progress.step)
        candidate, old = copy.deepcopy(best), copy.deepcopy(best)
        opt = torch.optim.Adam(candidate.parameters(), lr=cfg.offline_lr)
        record["candidates"] = []
        for step in range(1, cfg.offline_steps + 1):
            progress.phase = "policy"
            metrics.update(self.improve(candidate, old, opt, data))
            progress.step()
            if step % cfg.ope_every == 0 or step == cfg.offline_steps:
                decision = gate.decide(estimate(candidate), best_j)
                record["candidates"].append({"update": step, "estimate": decision.candidate,
                                             "accepted": decision.accepted})
                if decision.accepted:
                    best, best_j, chosen = copy.deepcopy(candidate), decision.candidate, f"improved at update {step}"
                    old = copy.deepcopy(candidate)
        if record["candidates"] and best is not candidate and not record["candidates"][-1]["accepted"]:
            record["last_candidate_measured"] = self.measure(candidate)
        progress.close()
        self.policy.load_state_dict(best.state_dict())
        self.value.load_state_dict(self.critics.v.state_dict())  # the online phase starts from IQL's V
        record.update({"chosen": chosen, "estimate": best_j, "accepted": chosen != "incumbent",
                       "measured": record["incumbent"]["measured"] if chosen == "incumbent" else self.measure(best)})
        self.rounds.append(record)
        print(f"rl100 round {record['round']}: {chosen} (estimate {best_j:.3f}, incumbent "
              f"{record['incumbent']['estimate']:.3f}; measured {record['measured']})", flush=True)
        return {**metrics, "rl100/accepted": float(chosen != "incumbent"), "rl100/estimate": best_j}

    def improve(self, policy: Any, old: Any, opt: torch.optim.Optimizer, data: Transitions) -> dict[str, float]:
        """One PPO-clip step on the per-denoising-step log-ratios at data states, chains from `old`."""
        cfg: RL100Config = self.cfg
        obs = data.sample(cfg.offline_batch, self.rng).obs
        with torch.no_grad():
            chain = old.denoise_chain({STATE: obs}, self.noise, generator=None)
            samples = chain.samples.transpose(0, 1)  # (B, K + 1, T, Da)
            adv = self.critics.advantage(obs, executed_actions(chain.samples, self.policy.config.n_obs_steps, self.ta))
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            old_logp = step_log_probs(chain).T
        loss, ratio, _, _ = chain_surrogate(policy, self.noise, obs, samples, old_logp, adv, cfg.offline_clip,
                                            per_step=True, mask=self.noise.mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
        opt.step()
        return {"losses/offline_policy": loss.item(), "losses/offline_ratio_dev": (ratio - 1).abs().mean().item()}

    # ------------------------------------------------------------------------------- the schedule
    def update(self) -> dict[str, float]:
        cfg: RL100Config = self.cfg
        roll = self.take_rollout()
        self.rollouts.append({k: v.cpu().numpy() for k, v in roll.items()})
        if self._n_updates < cfg.offline_rounds:
            metrics = self.offline_round()
        else:
            metrics = ppo_update(self.policy, self.value, self.noise, self.opt, roll, cfg, self.rng, self.noise.mask,
                                 per_step=True)
        self._n_updates += 1
        return metrics

    def report(self) -> dict[str, Any]:
        lines = ["RL-100 offline rounds (estimate: FQE of the discounted success from the first decisions; "
                 "measured: success in sim on the evaluation seeds):", "",
                 "| round | decisions | incumbent est. / measured | chosen | est. | measured |",
                 "|---|---|---|---|---|---|"]
        for r in self.rounds:
            inc = r["incumbent"]
            lines.append(f"| {r['round']} | {r['collected_decisions']} | {inc['estimate']:.3f} / "
                         f"{_pct(inc['measured'])} | {r['chosen']} | {r['estimate']:.3f} | {_pct(r['measured'])} |")
        return {"rounds": self.rounds, "results_md": "\n".join(lines)} if self.rounds else {}

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "value": self.value.state_dict(),
                "critics": self.critics.state_dict(), "opt": self.opt.state_dict(), "n_updates": self._n_updates,
                "rng": self.rng.bit_generator.state, "rounds": self.rounds}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for name in ("policy", "value", "critics", "opt"):
            getattr(self, name).load_state_dict(sd[name])
        self._n_updates = int(sd["n_updates"])
        self.rng.bit_generator.state = sd["rng"]
        self.rounds = list(sd["rounds"])
        used = int(self.schedule.rows_covered(self._n_updates))
        rows = self.rollout_rows.held()
        if rows is not None:  # the replayed rows earlier updates used are the offline data collected so far
            n = self.cfg.batch_rows
            self.rollouts = [{k: v[s : s + n] for k, v in rows.items()} for s in range(0, used, n)]
        self.drop_used_rows()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def load_rl100_policy(run_dir: str | Path) -> Any:
    """The fine-tuned policy of a finished run (an ordinary robo checkpoint in `<run>/policy`)."""
    return load_tuned_policy(run_dir)


ALGORITHM = Algorithm(
    name="rl100",
    config_class=RL100Config,
    explorer=RL100Explorer,
    learner=RL100Learner,
    load_policy=load_rl100_policy,
    description="RL-100: offline rounds (IQL + PPO on denoising steps, FQE-gated, BC retrain), then online PPO",
    cpu_profile="train/rl100_cpu.yaml",
    residual=False,
    runs_base=False,
)
