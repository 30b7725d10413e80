"""Residual PPO on a frozen chunked BC base (after ResiP, Ankile et al. 2024): `robo train --residual --algo ppo`.

Reads top to bottom: config -> networks -> `update(rollout) -> metrics` -> the loop. It exists to
compare against the off-policy default (robo.learn.residual_td3): on-policy PPO needs many more env
steps (ResiP used ~1000 parallel sim envs).

    residual ~ scale * N(mu([obs, base]), exp(log_std)^2)      (fixed std, zero-initialised mean)
    a_t = clamp(base_t + residual_t, -1, 1)

The log-probability is taken on the unscaled Gaussian sample; GAE with time-limit bootstrapping;
clipped surrogate with a KL early stop.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from robo.config import check_range, save_config
from robo.learn.common import Logger, ProgressLine, pick_device, set_seed
from robo.learn.evaluate import evaluate
from robo.learn.pipeline import DefaultBaseConfig
from robo.learn.residual_env import ResidualVecEnv
from robo.policies.residual.model import mlp


# ==================================================================================== config
@dataclass
class ResidualPPOConfig:
    """Hyper-parameters of residual PPO (ResiP's where they transfer; sized for a CPU)."""

    task: str = "PandaPegInsert-v0"
    """Gymnasium task id."""
    base: str = ""
    """BC checkpoint folder of the frozen base; empty = the embedded default."""
    demos: str = ""
    """Unused by PPO (kept so both learners share the base resolution)."""
    seed: int = 0
    """Seed for networks, sampling and training episodes."""
    total_env_steps: int = 100_000
    """Environment steps to train for (all envs together)."""
    n_envs: int = 8
    """Parallel environments (base chunks predicted in one batch)."""
    rollout_steps: int = 128
    """Steps per env per PPO iteration (batch = n_envs * rollout_steps)."""
    n_action_steps: int = 0
    """Open-loop execution horizon of the base chunks; 0 = the base's own."""
    action_scale: float = 0.1
    """Residual scale in normalised action units."""
    init_log_std: float = -1.0
    """Fixed log-std of the residual Gaussian (before scaling)."""
    hidden: int = 256
    """Hidden width of actor and critic MLPs."""
    n_layers: int = 2
    """Hidden layers of actor and critic."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    update_epochs: int = 10
    """Epochs over each rollout."""
    n_minibatches: int = 4
    """Minibatches per epoch."""
    clip_coef: float = 0.2
    """PPO clip range."""
    target_kl: float = 0.1
    """Stop the epoch loop once the approximate KL exceeds this."""
    vf_coef: float = 1.0
    """Value loss weight."""
    actor_lr: float = 3e-4
    """Actor learning rate."""
    critic_lr: float = 1e-3
    """Critic learning rate."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    eval_every: int = 10_000
    """Env steps between evaluations."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    final_eval_episodes: int = 50
    """Episodes of the final base vs base+residual comparison."""
    final_videos: int = 4
    """Seeds of the final evaluation rendered side by side, base | base + residual, into
    `base_vs_residual.mp4` (0 = no video)."""
    eval_seed: int = 10_000
    """First seed of evaluation episodes."""
    device: str = "auto"
    """torch device."""
    torch_threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    profile: Literal["gpu", "cpu"] = "cpu"
    """Recorded profile name."""
    default_base: DefaultBaseConfig = field(default_factory=DefaultBaseConfig)
    """How the embedded default base is made when `base` is empty."""

    def __post_init__(self) -> None:
        check_range("action_scale", self.action_scale, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        for name in ("total_env_steps", "n_envs", "rollout_steps", "update_epochs", "n_minibatches"):
            check_range(name, getattr(self, name), 1, None)
        check_range("final_videos", self.final_videos, 0, None)
        if (self.n_envs * self.rollout_steps) % self.n_minibatches:
            raise ValueError(f"n_minibatches={self.n_minibatches} must divide n_envs*rollout_steps")


# ==================================================================================== networks
class ResidualGaussian(nn.Module):
    """Mean head (zero-initialised last layer) + fixed log-std; value head on the same input."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: ResidualPPOConfig):
        super().__init__()
        self.mean = mlp(obs_dim + act_dim, cfg.hidden, cfg.n_layers, act_dim)
        with torch.no_grad():
            self.mean[-1].weight.zero_()
            self.mean[-1].bias.zero_()
        self.value = mlp(obs_dim + act_dim, cfg.hidden, cfg.n_layers, 1)
        self.register_buffer("log_std", torch.full((act_dim,), cfg.init_log_std))
        self.scale = cfg.action_scale

    def dist(self, obs: torch.Tensor, base: torch.Tensor) -> torch.distributions.Normal:
        mu = self.mean(torch.cat([obs, base], -1))
        return torch.distributions.Normal(mu, self.log_std.exp().expand_as(mu))

    def v(self, obs: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return self.value(torch.cat([obs, base], -1)).squeeze(-1)


# ==================================================================================== update
def update(net: ResidualGaussian, opt: torch.optim.Optimizer, roll: dict[str, torch.Tensor], cfg: ResidualPPOConfig,
           rng: np.random.Generator) -> dict[str, float]:
    """PPO epochs over one rollout (flattened to (N,)), early-stopped on KL."""
    n = roll["obs"].shape[0]
    mb = n // cfg.n_minibatches
    adv = (roll["adv"] - roll["adv"].mean()) / (roll["adv"].std() + 1e-8)
    stats: dict[str, float] = {}
    for _epoch in range(cfg.update_epochs):
        order = torch.as_tensor(rng.permutation(n))
        approx_kl = 0.0
        for start in range(0, n, mb):
            idx = order[start : start + mb]
            d = net.dist(roll["obs"][idx], roll["base"][idx])
            logp = d.log_prob(roll["sample"][idx]).sum(-1)
            log_ratio = logp - roll["logp"][idx]
            ratio = log_ratio.exp()
            pg_loss = torch.max(-adv[idx] * ratio, -adv[idx] * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
            v_loss = 0.5 * (net.v(roll["obs"][idx], roll["base"][idx]) - roll["ret"][idx]).pow(2).mean()
            loss = pg_loss + cfg.vf_coef * v_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - log_ratio).mean().item()
            stats = {"losses/policy": pg_loss.item(), "losses/value": v_loss.item(), "losses/approx_kl": approx_kl}
        if approx_kl > cfg.target_kl:
            break
    return stats


# ==================================================================================== loop
def train(cfg: ResidualPPOConfig, run_dir: str | Path, base: Any, dataset: Any | None = None,
          resume: bool = False) -> dict[str, Any]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    set_seed(cfg.seed)
    device = pick_device(cfg.device)
    save_config(cfg, run_dir / "config.yaml")
    envs = ResidualVecEnv(cfg.task, base, cfg.n_envs, cfg.seed, n_action_steps=cfg.n_action_steps or None)
    net = ResidualGaussian(envs.obs_dim, envs.act_dim, cfg).to(device)
    opt = torch.optim.Adam([{"params": net.mean.parameters(), "lr": cfg.actor_lr},
                            {"params": net.value.parameters(), "lr": cfg.critic_lr}])
    rng = np.random.default_rng(cfg.seed)
    logger = Logger(run_dir)
    state: dict[str, Any] = {"env_steps": 0, "episodes": 0, "evals": []}
    if resume and (run_dir / "ppo_state.json").is_file():
        net.load_state_dict(torch.load(run_dir / "ppo_agent.pt", map_location=device, weights_only=True))
        state = json.loads((run_dir / "ppo_state.json").read_text())

    def residual_fn(o: np.ndarray, b: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mu = net.dist(torch.as_tensor(o, device=device), torch.as_tensor(b, device=device)).mean
        return (mu * cfg.action_scale).cpu().numpy() * envs.residual_mask

    def run_eval(with_residual: bool) -> float:
        r = evaluate(cfg.task, base, cfg.eval_episodes, seed=cfg.eval_seed, n_action_steps=cfg.n_action_steps or None,
                     residual=residual_fn if with_residual else None, stats=envs.normalizer_stats)
        return r.success_rate

    if not state["evals"]:
        state["evals"].append({"env_steps": 0, "success_rate": run_eval(False)})
    obs, base_act = envs.reset()
    recent: list[bool] = []
    progress = ProgressLine(cfg.total_env_steps, "residual-ppo")
    t0, steps0 = time.monotonic(), state["env_steps"]
    next_eval = (state["env_steps"] // cfg.eval_every + 1) * cfg.eval_every
    T, N = cfg.rollout_steps, cfg.n_envs
    metrics: dict[str, float] = {}
    while state["env_steps"] < cfg.total_env_steps:
        # ---- rollout
        buf = {k: [] for k in ("obs", "base", "sample", "logp", "value", "reward", "done")}
        for _ in range(T):
            o, b = torch.as_tensor(obs, device=device), torch.as_tensor(base_act, device=device)
            with torch.no_grad():
                d = net.dist(o, b)
                sample = d.sample()
                logp, value = d.log_prob(sample).sum(-1), net.v(o, b)
            # masked: no residual on action dims the base's demos never used (they would drift)
            action = np.clip(base_act + cfg.action_scale * sample.cpu().numpy() * envs.residual_mask, -1.0, 1.0)
            res = envs.step(action)
            reward = res.reward.copy()
            if res.truncated.any():  # bootstrap time-limit truncation from the true final state
                tr = np.flatnonzero(res.truncated & ~res.terminated)
                with torch.no_grad():
                    v_final = net.v(torch.as_tensor(res.next_obs[tr], device=device),
                                    torch.as_tensor(res.next_base[tr], device=device)).cpu().numpy()
                reward[tr] += cfg.gamma * v_final
            for k, v in (("obs", o), ("base", b), ("sample", sample), ("logp", logp), ("value", value)):
                buf[k].append(v)
            buf["reward"].append(torch.as_tensor(reward, device=device))
            buf["done"].append(torch.as_tensor(res.terminated | res.truncated, device=device, dtype=torch.float32))
            obs, base_act = res.obs, res.base
            state["episodes"] += len(res.episode_successes)
            # a dropped step (non-finite obs/reward) arrives as a truncation with reward 0 from the last good state
            state["dropped_steps"] = state.get("dropped_steps", 0) + int((~res.valid).sum())
            recent = (recent + res.episode_successes)[-50:]
        state["env_steps"] += T * N
        # ---- GAE
        roll = {k: torch.stack(v) for k, v in buf.items()}  # (T, N, ...)
        with torch.no_grad():
            last_v = net.v(torch.as_tensor(obs, device=device), torch.as_tensor(base_act, device=device))
        adv = torch.zeros_like(roll["reward"])
        gae = torch.zeros(N, device=device)
        for t in reversed(range(T)):
            next_v = last_v if t == T - 1 else roll["value"][t + 1]
            nonterminal = 1.0 - roll["done"][t]
            delta = roll["reward"][t] + cfg.gamma * next_v * nonterminal - roll["value"][t]
            gae = delta + cfg.gamma * cfg.gae_lambda * nonterminal * gae
            adv[t] = gae
        roll["adv"], roll["ret"] = adv, adv + roll["value"]
        flat = {k: v.reshape(T * N, *v.shape[2:]) for k, v in roll.items()}
        metrics = update(net, opt, flat, cfg, rng)
        # ---- log, evaluate
        train_success = float(np.mean(recent)) if recent else 0.0
        logger.log(state["env_steps"], {**metrics, "charts/train_success": train_success})
        if state["env_steps"] >= next_eval:
            next_eval += cfg.eval_every
            sr = run_eval(True)
            state["evals"].append({"env_steps": state["env_steps"], "success_rate": sr})
            logger.log(state["env_steps"], {"eval/success_rate": sr})
        progress.update(state["env_steps"], {"episodes": state["episodes"], "train_success": train_success,
                                             "eval_success": state["evals"][-1]["success_rate"],
                                             "steps/s": (state["env_steps"] - steps0) / (time.monotonic() - t0)})
    progress.close()
    envs.close()
    state["wall_clock_s"] = state.get("wall_clock_s", 0.0) + time.monotonic() - t0
    tmp = run_dir / "ppo_agent.pt.tmp"
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, run_dir / "ppo_agent.pt")
    (run_dir / "ppo_state.json").write_text(json.dumps(state))
    torch.save({"obs_dim": envs.obs_dim, "act_dim": envs.act_dim, "net": net.state_dict(),
                "mask": torch.as_tensor(envs.residual_mask)},
               run_dir / "residual_ppo.pt")
    logger.close()
    return state


def load_residual_fn(run_dir: str | Path, device: str = "cpu"):
    """Deterministic residual (scaled Gaussian mean) of a PPO run: fn(obs, base) -> residual (numpy)."""
    from robo.config import load_config

    run_dir = Path(run_dir)
    cfg = load_config(ResidualPPOConfig, run_dir / "config.yaml")
    saved = torch.load(run_dir / "residual_ppo.pt", map_location=device, weights_only=True)
    net = ResidualGaussian(saved["obs_dim"], saved["act_dim"], cfg)
    net.load_state_dict(saved["net"])

    mask = np.asarray(saved.get("mask", torch.ones(saved["act_dim"])), np.float32)

    @torch.no_grad()
    def fn(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        return (net.dist(torch.as_tensor(obs), torch.as_tensor(base)).mean * cfg.action_scale).numpy() * mask

    return fn
