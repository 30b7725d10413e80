"""Residual PPO on a frozen chunked BC base (after ResiP, Ankile et al. 2024): `--algo ppo`.

Reads top to bottom: config -> networks -> `update(rollout) -> metrics` -> explorer (rollouts, GAE)
-> learner (one PPO iteration per full rollout batch) -> the run's artefact. It exists to compare
against the off-policy default (robo.learn.residual_td3): on-policy PPO needs many more env steps
(ResiP used ~1000 parallel sim envs).

    residual ~ scale * N(mu([obs, base]), exp(log_std)^2)      (fixed std, zero-initialised mean)
    a_t = clamp(base_t + residual_t, -1, 1)

The log-probability is taken on the unscaled Gaussian sample; GAE with time-limit bootstrapping is
computed on the actor side with the value net that acted (so rows carry advantages and returns);
clipped surrogate with a KL early stop. One `update()` is one PPO iteration (all epochs) over
`n_envs * rollout_steps` rows; actors wait for its weights (`max_actor_lead` 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from robo.config import check_range
from robo.learn.algo import (
    Algorithm,
    EnvInfo,
    Explorer,
    Learner,
    RLConfig,
    float_schema,
    load_module_weights,
    module_weights,
)
from robo.learn.replay import OnPolicyRollouts
from robo.policies.residual.model import mlp


# ==================================================================================== config
@dataclass
class ResidualPPOConfig(RLConfig):
    """Hyper-parameters of residual PPO (ResiP's where they transfer; sized for a CPU)."""

    total_env_steps: int = 100_000
    """Stored transitions to train for."""
    n_envs: int = 8
    """Parallel environments per actor (base chunks predicted in one batch)."""
    rollout_steps: int = 128
    """Steps per env per PPO iteration (batch = n_envs * rollout_steps)."""
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
    target_kl: float = 0.02
    """Stop the epoch loop once the approximate KL exceeds this (a guard; at actor_lr 3e-5 an update
    rarely reaches it)."""
    vf_coef: float = 1.0
    """Value loss weight."""
    actor_lr: float = 3e-5
    """Actor learning rate. Small on purpose: with a sparse success reward and ~1k rows per update the
    advantages carry little about the actions, and Adam moves the mean by ~lr per step whatever the
    gradient's size, so the mean random-walks away from the base. At 3e-4 (ResiP's, whose batches
    are ~1000 envs) the residual made the peg base worse (65% -> 27% at 30k steps; README)."""
    kl_to_base: float = 0.5
    """Weight of KL(residual policy || the base with the same noise) = sum mu^2 / (2 std^2) over the
    acting dims, in the actor's loss. It pulls the mean back toward zero residual (the base), so on
    uninformative advantages the mean's random walk stays bounded instead of growing with the updates;
    an advantage that persists outweighs it. 0: off."""
    critic_lr: float = 1e-3
    """Critic learning rate."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation."""
    final_eval_episodes: int = 50
    """Episodes of the final base vs base+residual comparison."""
    max_actor_lead: int = 0
    """On-policy: actors wait for the weights of each update (0)."""
    profile: Literal["gpu", "cpu"] = "cpu"
    """Recorded profile name."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("action_scale", self.action_scale, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        for name in ("rollout_steps", "update_epochs", "n_minibatches"):
            check_range(name, getattr(self, name), 1, None)
        if (self.n_envs * self.rollout_steps) % self.n_minibatches:
            raise ValueError(f"n_minibatches={self.n_minibatches} must divide n_envs*rollout_steps")

    @property
    def batch_rows(self) -> int:
        return self.n_envs * self.rollout_steps


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
           rng: np.random.Generator, mask: torch.Tensor | None = None) -> dict[str, float]:
    """PPO epochs over one rollout (flattened to (N,)), early-stopped on KL. `mask` (act_dim,): the dims
    the residual acts on (for the KL to the base and the drift metric; all when None)."""
    if mask is None:
        mask = torch.ones(roll["sample"].shape[-1], device=roll["sample"].device)
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
            z_mean = d.mean / d.stddev * mask  # the mean's offset from the base, in exploration stds
            kl_base = 0.5 * z_mean.pow(2).sum(-1).mean()
            loss = pg_loss + cfg.vf_coef * v_loss + cfg.kl_to_base * kl_base
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - log_ratio).mean().item()
            stats = {"losses/policy": pg_loss.item(), "losses/value": v_loss.item(), "losses/approx_kl": approx_kl,
                     "losses/kl_to_base": kl_base.item(),
                     "policy/mean_drift_std": z_mean.pow(2).sum(-1).div(mask.sum()).mean().sqrt().item()}
        if approx_kl > cfg.target_kl:
            break
    return stats


# ==================================================================================== actor side
class ResidualPPOExplorer(Explorer):
    """Samples residuals from a CPU copy of the policy; after `rollout_steps` lockstep steps, computes
    GAE with the same value net and returns the rollout as rows."""

    on_policy = True

    def __init__(self, cfg: ResidualPPOConfig, env: EnvInfo, seed: int) -> None:
        self.cfg = cfg
        self.net = ResidualGaussian(env.obs_dim, env.act_dim, cfg)
        self.mask = env.residual_mask
        self.generator = torch.Generator().manual_seed(seed)
        self.buf: dict[str, list[torch.Tensor]] = {}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        load_module_weights(self.net, weights, "net.")

    @torch.no_grad()
    def act(self, obs: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        o, b = torch.as_tensor(obs), torch.as_tensor(base)
        d = self.net.dist(o, b)
        sample = d.mean + d.stddev * torch.randn(d.mean.shape, generator=self.generator)
        extras = {"sample": sample.numpy(), "logp": d.log_prob(sample).sum(-1).numpy(),
                  "value": self.net.v(o, b).numpy()}
        # masked: no residual on action dims the base's demos never used (they would drift)
        action = np.clip(base + self.cfg.action_scale * extras["sample"] * self.mask, -1.0, 1.0)
        return action.astype(np.float32), extras

    @torch.no_grad()
    def observe(self, obs, base, action, extras, step) -> dict[str, np.ndarray] | None:
        cfg = self.cfg
        reward = step.reward.astype(np.float32).copy()
        truncated = step.truncated & ~step.terminated
        if truncated.any():  # bootstrap time-limit truncation from the true final state
            tr = np.flatnonzero(truncated)
            reward[tr] += cfg.gamma * self.net.v(torch.as_tensor(step.next_obs[tr]),
                                                 torch.as_tensor(step.next_base[tr])).numpy()
        for k, v in (("obs", obs), ("base", base), ("reward", reward),
                     ("done", (step.terminated | step.truncated).astype(np.float32)), *extras.items()):
            self.buf.setdefault(k, []).append(torch.as_tensor(np.asarray(v, np.float32)))
        if len(self.buf["obs"]) < cfg.rollout_steps:
            return None
        roll = {k: torch.stack(v) for k, v in self.buf.items()}  # (T, N, ...)
        self.buf = {}
        last_v = self.net.v(torch.as_tensor(step.obs), torch.as_tensor(step.base))
        adv = torch.zeros_like(roll["reward"])
        gae = torch.zeros_like(last_v)
        for t in reversed(range(cfg.rollout_steps)):
            next_v = last_v if t == cfg.rollout_steps - 1 else roll["value"][t + 1]
            nonterminal = 1.0 - roll["done"][t]
            delta = roll["reward"][t] + cfg.gamma * next_v * nonterminal - roll["value"][t]
            gae = delta + cfg.gamma * cfg.gae_lambda * nonterminal * gae
            adv[t] = gae
        out = {"obs": roll["obs"], "base": roll["base"], "sample": roll["sample"], "logp": roll["logp"],
               "adv": adv, "ret": adv + roll["value"]}
        return {k: v.reshape(-1, *v.shape[2:]).numpy() for k, v in out.items()}


# ==================================================================================== learner side
class ResidualPPOLearner(Learner):
    """One PPO iteration per `n_envs * rollout_steps` rows; the rows are used once."""

    def __init__(self, setup: Any) -> None:
        cfg: ResidualPPOConfig = setup.cfg
        env: EnvInfo = setup.env_info
        self.cfg = cfg
        self.device = setup.device
        self.obs_dim, self.act_dim, self.mask = env.obs_dim, env.act_dim, env.residual_mask
        self.mask_t = torch.as_tensor(self.mask, device=setup.device)
        self.net = ResidualGaussian(env.obs_dim, env.act_dim, cfg).to(setup.device)
        self.opt = torch.optim.Adam([{"params": self.net.mean.parameters(), "lr": cfg.actor_lr},
                                     {"params": self.net.value.parameters(), "lr": cfg.critic_lr}])
        self.row_schema = float_schema(obs=env.obs_dim, base=env.act_dim, sample=env.act_dim, logp=0, adv=0, ret=0)
        self.rollout_rows = OnPolicyRollouts(cfg.batch_rows)
        self.schedule = self.rollout_rows.schedule
        self.rng = np.random.default_rng(cfg.seed + 1)
        self._n_updates = 0

    @property
    def n_updates(self) -> int:
        return self._n_updates

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self.rollout_rows.add(rows)

    def updates_owed(self) -> int:
        return self.rollout_rows.updates_owed(self._n_updates)

    def rows_ahead(self) -> int:
        return self.rollout_rows.rows_ahead(self._n_updates)

    def update(self) -> dict[str, float]:
        roll = {k: torch.as_tensor(v, device=self.device) for k, v in self.rollout_rows.take().items()}
        self._n_updates += 1
        return update(self.net, self.opt, roll, self.cfg, self.rng, self.mask_t)

    def weights(self) -> dict[str, np.ndarray]:
        return module_weights(self.net, "net.")

    def eval_policy(self) -> tuple[None, Any]:
        net, scale, mask, device = self.net, self.cfg.action_scale, self.mask, self.device

        @torch.no_grad()
        def residual_fn(o: np.ndarray, b: np.ndarray) -> np.ndarray:
            mu = net.dist(torch.as_tensor(o, device=device), torch.as_tensor(b, device=device)).mean
            return (mu * scale).cpu().numpy() * mask

        return None, residual_fn

    def save_policy(self, run_dir: Path) -> None:
        from robo.data.atomic import atomic_path

        with atomic_path(Path(run_dir) / "residual_ppo.pt") as tmp:
            torch.save({"obs_dim": self.obs_dim, "act_dim": self.act_dim, "net": self.net.state_dict(),
                        "mask": torch.as_tensor(self.mask)}, tmp)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "n_updates": self._n_updates,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.net.load_state_dict(sd["net"])
        self.opt.load_state_dict(sd["opt"])
        self._n_updates = int(sd["n_updates"])
        self.rng.bit_generator.state = sd["rng"]
        self.rollout_rows.drop_used(self._n_updates)  # rows replayed before this call that earlier updates used


# ==================================================================================== the run's artefact
def load_residual_fn(run_dir: str | Path, device: str = "cpu"):
    """Deterministic residual (scaled Gaussian mean) of a PPO run: fn(obs, base) -> residual (numpy)."""
    from robo.config import load_config
    from robo.learn.common import load_torch

    run_dir = Path(run_dir)
    cfg = load_config(ResidualPPOConfig, run_dir / "config.yaml")
    path = run_dir / "residual_ppo.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the run has not finished)")
    saved = load_torch(path)
    net = ResidualGaussian(saved["obs_dim"], saved["act_dim"], cfg)
    net.load_state_dict(saved["net"])
    mask = np.asarray(saved.get("mask", torch.ones(saved["act_dim"])), np.float32)

    @torch.no_grad()
    def fn(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        return (net.dist(torch.as_tensor(obs), torch.as_tensor(base)).mean * cfg.action_scale).numpy() * mask

    return fn


ALGORITHM = Algorithm(
    name="ppo",
    config_class=ResidualPPOConfig,
    explorer=ResidualPPOExplorer,
    learner=ResidualPPOLearner,
    load_policy=load_residual_fn,
    description="residual PPO on a frozen BC base (ResiP): on-policy, Gaussian residual, GAE",
    cpu_profile="train/residual_ppo_cpu.yaml",
)
