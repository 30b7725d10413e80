"""SAC from scratch with demos in the buffer (RLPD-style 50/50 sampling, no base policy): `--algo sac`.

The baseline of scripts/bench_residual.py: the same tasks, demos, critic ensemble, n-step replay and
evaluation as residual TD3, but the actor outputs the whole action (a tanh-Gaussian over [-1, 1])
instead of a bounded correction to a frozen base. Reads top to bottom: config -> actor -> update ->
explorer -> learner -> the run's artefact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robo.config import check_range
from robo.learn.algo import (
    Algorithm,
    EnvInfo,
    Explorer,
    Learner,
    RLConfig,
    load_module_weights,
    module_weights,
)
from robo.learn.replay import NStepRows, OffPolicyData
from robo.policies.residual.model import CriticEnsemble, mlp


# ==================================================================================== config
@dataclass
class SACConfig(RLConfig):
    """SAC + demos (RLPD) hyper-parameters, sized like the residual CPU profile for a fair comparison."""

    base: str = "none"
    """No base: the actor outputs the whole action (set `demos` to a dataset for the demo buffer)."""
    total_env_steps: int = 30_000
    """Stored transitions to train for."""
    hidden: int = 256
    """Actor and critic width."""
    n_layers: int = 2
    """Hidden layers."""
    num_q: int = 4
    """Critic heads."""
    num_q_target: int = 2
    """Random heads in the min of the TD target."""
    gamma: float = 0.99
    """Discount."""
    n_step: int = 3
    """n-step returns."""
    tau: float = 0.005
    """Target Polyak rate."""
    batch_size: int = 256
    """Batch size."""
    demo_fraction: float = 0.5
    """Demo share of each batch."""
    utd: int = 1
    """Updates per stored transition."""
    lr: float = 3e-4
    """Actor, critic and temperature learning rate."""
    init_temperature: float = 0.1
    """Initial entropy temperature."""
    learning_starts: int = 2_000
    """Random-action transitions before updates."""
    buffer_size: int = 100_000
    """Online replay capacity."""
    eval_every: int = 5_000
    """Stored transitions between evaluations."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    mask_unused_dims: bool = False
    """SAC acts on every action dim (there is no base whose unused dims could drift)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("demo_fraction", self.demo_fraction, 0.0, 1.0)
        check_range("num_q_target", self.num_q_target, 1, self.num_q)
        check_range("utd", self.utd, 1, None)


# ==================================================================================== networks
class TanhGaussianActor(nn.Module):
    """obs (B, Do) -> action in (-1, 1) with its log-probability (tanh-corrected)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, n_layers: int):
        super().__init__()
        self.net = mlp(obs_dim, hidden, n_layers, 2 * act_dim)

    def forward(self, obs: torch.Tensor, deterministic: bool = False,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`noise` (B, Da) standard normal draws to sample with (default: drawn from torch's generator)."""
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(-5.0, 2.0)
        if noise is None and not deterministic:
            noise = torch.randn_like(mu)
        u = mu if deterministic else mu + log_std.exp() * noise
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mu) / log_std.exp()).pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        logp = logp - (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return a, logp


# ==================================================================================== update
def update(actor, critic, critic_target, log_alpha, opts, batch, cfg: SACConfig,
           target_entropy: float) -> dict[str, float]:
    """One SAC update of critic, actor and temperature on a batch (the critic's base input is 0)."""
    zeros = torch.zeros_like(batch["base"])  # no base: the critic's base input is always 0
    with torch.no_grad():
        next_a, next_logp = actor(batch["next_obs"])
        q_next = critic_target(batch["next_obs"], zeros, next_a)
        heads = torch.randperm(cfg.num_q)[: cfg.num_q_target]
        v_next = q_next[heads].min(0).values - log_alpha.exp() * next_logp * (batch["discount"] > 0)
        y = batch["reward"] + batch["discount"] * v_next
    q = critic(batch["obs"], zeros, batch["action"])
    critic_loss = F.mse_loss(q, y.unsqueeze(0).expand_as(q), reduction="none").mean(1).sum()
    opts["critic"].zero_grad(set_to_none=True)
    critic_loss.backward()
    opts["critic"].step()
    a, logp = actor(batch["obs"])
    actor_loss = (log_alpha.exp().detach() * logp - critic(batch["obs"], zeros, a).mean(0)).mean()
    opts["actor"].zero_grad(set_to_none=True)
    actor_loss.backward()
    opts["actor"].step()
    alpha_loss = -(log_alpha * (logp.detach() + target_entropy)).mean()
    opts["alpha"].zero_grad(set_to_none=True)
    alpha_loss.backward()
    opts["alpha"].step()
    with torch.no_grad():
        for p, tp in zip(critic.parameters(), critic_target.parameters()):
            tp.lerp_(p, cfg.tau)
    return {"losses/critic": critic_loss.item(), "losses/actor": actor_loss.item(),
            "charts/alpha": log_alpha.exp().item()}


# ==================================================================================== actor side
class SACExplorer(Explorer):
    """Uniform random actions until learning starts, then samples of a CPU copy of the actor."""

    def __init__(self, cfg: SACConfig, env: EnvInfo, seed: int) -> None:
        self.cfg = cfg
        self.actor = TanhGaussianActor(env.obs_dim, env.act_dim, cfg.hidden, cfg.n_layers)
        self.rng = np.random.default_rng(seed)
        self.learning_started = False
        self.rows = NStepRows(cfg.n_step, cfg.gamma, zero_base=True)

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        load_module_weights(self.actor, weights, "actor.")
        self.learning_started = bool(weights["learning_started"])

    @torch.no_grad()
    def act(self, obs: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if not self.learning_started:
            return self.rng.uniform(-1, 1, size=base.shape).astype(np.float32), {}
        # the explorer's own draws: torch's generator belongs to the learner, which may update meanwhile
        noise = torch.as_tensor(self.rng.standard_normal(base.shape, dtype=np.float32))
        return self.actor(torch.as_tensor(obs), noise=noise)[0].numpy(), {}

    def observe(self, obs, base, action, extras, step) -> dict[str, np.ndarray] | None:
        return self.rows(obs, base, action, step, human=extras.get("human"))


# ==================================================================================== learner side
class SACLearner(Learner):
    """Online + demo replay; `utd` SAC updates per stored transition after `learning_starts`."""

    def __init__(self, setup: Any) -> None:
        from robo.learn.demos import demo_transitions

        cfg: SACConfig = setup.cfg
        env: EnvInfo = setup.env_info
        self.cfg, self.device = cfg, setup.device
        self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        self.actor = TanhGaussianActor(env.obs_dim, env.act_dim, cfg.hidden, cfg.n_layers).to(self.device)
        self.critic = CriticEnsemble(env.obs_dim, env.act_dim, cfg.num_q, cfg.hidden, cfg.n_layers).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(np.log(cfg.init_temperature), device=self.device, requires_grad=True)
        self.opts = {"actor": torch.optim.Adam(self.actor.parameters(), cfg.lr),
                     "critic": torch.optim.Adam(self.critic.parameters(), cfg.lr),
                     "alpha": torch.optim.Adam([self.log_alpha], cfg.lr)}
        demo = None
        if setup.dataset is not None:  # demos as they are: no base, so the base action is 0
            demo = demo_transitions(setup.dataset, None, setup.view, cfg.n_step, cfg.gamma)
        self.data = OffPolicyData(cfg.buffer_size, env.obs_dim, env.act_dim, demo, utd=cfg.utd,
                                  learning_starts=cfg.learning_starts, batch_size=cfg.batch_size,
                                  demo_fraction=cfg.demo_fraction, seed=cfg.seed + 1, device=self.device)
        self.row_schema = self.data.row_schema
        self.schedule = self.data.schedule
        self._n_updates = 0

    @property
    def n_updates(self) -> int:
        return self._n_updates

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self.data.add(rows)

    def updates_owed(self) -> int:
        return self.data.updates_owed(self._n_updates)

    def rows_ahead(self) -> int:
        return self.data.rows_ahead(self._n_updates)

    def update(self) -> dict[str, float]:
        self._n_updates += 1
        return update(self.actor, self.critic, self.critic_target, self.log_alpha, self.opts, self.data.batch(),
                      self.cfg, -float(self.act_dim))

    def weights(self) -> dict[str, np.ndarray]:
        w = module_weights(self.actor, "actor.")
        w["learning_started"] = np.array(self.data.learning_started)
        return w

    def eval_policy(self) -> tuple[None, Any]:
        return None, _deterministic(self.actor, self.device)

    def save_policy(self, run_dir: Path) -> None:
        from robo.data.atomic import atomic_path

        with atomic_path(Path(run_dir) / "sac_actor.pt") as tmp:
            torch.save({"obs_dim": self.obs_dim, "act_dim": self.act_dim, "actor": self.actor.state_dict()}, tmp)

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().cpu(),
                "opts": {k: o.state_dict() for k, o in self.opts.items()}, "n_updates": self._n_updates,
                "rng": self.data.rng.bit_generator.state}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("actor", "critic", "critic_target"):
            getattr(self, k).load_state_dict(sd[k])
        with torch.no_grad():
            self.log_alpha.copy_(sd["log_alpha"])
        for k, o in self.opts.items():
            o.load_state_dict(sd["opts"][k])
        self._n_updates = int(sd["n_updates"])
        self.data.rng.bit_generator.state = sd["rng"]


def _deterministic(actor: TanhGaussianActor, device: Any):
    """The actor's mean action as `fn(obs, base) -> action` (evaluate() adds it to a zero base)."""

    @torch.no_grad()
    def fn(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        return actor(torch.as_tensor(obs, device=device), deterministic=True)[0].cpu().numpy()

    return fn


# ==================================================================================== the run's artefact
def load_policy_fn(run_dir: str | Path, device: str = "cpu"):
    """The SAC actor of a finished run as `fn(obs, base) -> action` (the base input is ignored)."""
    from robo.config import load_config
    from robo.learn.common import load_torch

    run_dir = Path(run_dir)
    cfg = load_config(SACConfig, run_dir / "config.yaml")
    path = run_dir / "sac_actor.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the run has not finished)")
    saved = load_torch(path)
    actor = TanhGaussianActor(saved["obs_dim"], saved["act_dim"], cfg.hidden, cfg.n_layers)
    actor.load_state_dict(saved["actor"])
    return _deterministic(actor, "cpu")


ALGORITHM = Algorithm(
    name="sac",
    accepts_interventions=True,
    config_class=SACConfig,
    explorer=SACExplorer,
    learner=SACLearner,
    load_policy=load_policy_fn,
    description="SAC from scratch with demos in every batch (RLPD): the no-base baseline",
    residual=False,
)
