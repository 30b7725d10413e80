"""Residual off-policy RL on a frozen chunked BC base (after ResFiT, Ankile et al. 2025): `--algo td3`.

Reads top to bottom: config -> agent (networks + updates) -> explorer (actor side) -> learner
(learner side) -> the run's artefact. The loop, replay storage, evaluation and logging are the
spine's (robo.learn.spine); nothing here is specific to one task or one placement.

    a_t = clamp(base_t + tanh(actor([obs_t, base_t])) * scale + explore_noise, -1, 1)

The critic is a LayerNorm ensemble Q_h(obs, base, a) on the combined clamped action; TD targets use
n-step returns and the min over 2 random target heads (REDQ-style); the actor maximises the mean
over heads. Batches are half demos (with base actions relabelled by running the base on the demo
states), half online data. Training starts with `learning_starts` env steps of base + small uniform
noise, then `critic_warmup_updates` critic-only updates. One `update()` is one critic update followed
by the actor updates it owes, so `utd` critic updates and `actor_updates_per_step` actor updates are
made per stored transition (ResFiT: 4 and 1; a fraction such as 0.5 is an actor update every other
transition, TD3's policy delay).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

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
from robo.policies.residual.model import CriticEnsemble, ResidualActor


# ==================================================================================== config
@dataclass
class ResidualTD3Config(RLConfig):
    """Every hyper-parameter of `robo train --residual` (defaults: ResFiT's, sized for a GPU).

    configs/train/residual_td3_cpu.yaml holds the lighter profile picked when no GPU is present.
    """

    action_scale: float = 0.1
    """Residual bound in normalised action units: residual in [-scale, scale]."""
    actor_hidden: int = 1024
    """Hidden width of the residual actor MLP."""
    critic_hidden: int = 1024
    """Hidden width of each critic head."""
    n_layers: int = 2
    """Hidden layers in actor and critic MLPs (with LayerNorm)."""
    num_q: int = 10
    """Critic ensemble heads."""
    num_q_target: int = 2
    """Random heads whose minimum forms the TD target."""
    gamma: float = 0.99
    """Discount per env step."""
    n_step: int = 3
    """n-step returns."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    batch_size: int = 256
    """Transitions per update (demo_fraction of them from the demo buffer)."""
    demo_fraction: float = 0.5
    """Share of each batch drawn from demos (RLPD symmetric sampling)."""
    utd: int = 4
    """Critic updates per stored transition (update-to-data ratio)."""
    actor_updates_per_step: float = 1.0
    """Actor updates per stored transition after the critic warm-up (0.5: one every other transition)."""
    actor_lr: float = 1e-6
    """Residual actor learning rate (small: the base is already good)."""
    critic_lr: float = 1e-4
    """Critic learning rate."""
    grad_clip: float = 1.0
    """Gradient-norm clip for actor and critic."""
    actor_q: Literal["mean", "min"] = "mean"
    """Critic heads' reduction in the actor loss: mean (ResFiT) | min (pessimistic: the actor cannot
    exploit one head's over-estimate)."""
    residual_penalty: float = 0.0
    """Weight of mean((residual / action_scale)^2) in the actor loss: keeps the residual at 0 unless Q says."""
    explore_std: float = 0.05
    """Gaussian exploration noise on the residual (normalised units)."""
    target_noise_std: float = 0.05
    """Target policy smoothing noise std (normalised units)."""
    target_noise_clip: float = 0.1
    """Target policy smoothing noise clip."""
    learning_starts: int = 10_000
    """Stored transitions of base + uniform noise before any update."""
    warmup_noise: float = 0.05
    """Half-width of the uniform noise added to the base during `learning_starts`."""
    critic_warmup_updates: int = 10_000
    """Critic-only updates after `learning_starts`, before the actor trains."""
    buffer_size: int = 300_000
    """Online replay capacity (transitions)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("action_scale", self.action_scale, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("demo_fraction", self.demo_fraction, 0.0, 1.0)
        check_range("tau", self.tau, 0.0, 1.0)
        check_range("actor_updates_per_step", self.actor_updates_per_step, 0.0, None)
        for name in ("num_q", "n_step", "batch_size", "utd", "buffer_size", "actor_hidden", "critic_hidden"):
            check_range(name, getattr(self, name), 1, None)
        check_range("num_q_target", self.num_q_target, 1, self.num_q)
        check_range("learning_starts", self.learning_starts, 0, None)
        if self.actor_q not in ("mean", "min"):
            raise ValueError(f"actor_q={self.actor_q!r} is not one of ['mean', 'min']")


# ==================================================================================== agent
class ResidualTD3Agent:
    """Residual actor + critic ensemble + targets + optimisers. `update(batch) -> metrics`."""

    def __init__(self, cfg: ResidualTD3Config, obs_dim: int, act_dim: int, device: torch.device):
        self.cfg = cfg
        self.device = device
        self.actor = ResidualActor(obs_dim, act_dim, cfg.actor_hidden, cfg.n_layers, cfg.action_scale).to(device)
        self.critic = CriticEnsemble(obs_dim, act_dim, cfg.num_q, cfg.critic_hidden, cfg.n_layers).to(device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, fused=True)
        self.n_updates = 0

    @torch.no_grad()
    def act(self, obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Deterministic residual (N, Da) for numpy inputs."""
        o = torch.as_tensor(obs, device=self.device)
        b = torch.as_tensor(base, device=self.device)
        return self.actor(o, b).cpu().numpy()

    def td_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """y = R_n + discount_n * min over `num_q_target` random target heads of Q'(s_n, a'_n)  -> (B,)."""
        cfg = self.cfg
        with torch.no_grad():
            next_res = self.actor_target(batch["next_obs"], batch["next_base"])
            noise = (torch.randn_like(next_res) * cfg.target_noise_std).clamp(-cfg.target_noise_clip,
                                                                              cfg.target_noise_clip)
            noise = noise * self.actor_target.mask
            next_action = (batch["next_base"] + next_res + noise).clamp(-1.0, 1.0)
            heads = torch.randperm(cfg.num_q, device=self.device)[: cfg.num_q_target]
            q_next = self.critic_target(batch["next_obs"], batch["next_base"], next_action, heads)  # (H', B)
            q_next = q_next.min(dim=0).values
            return batch["reward"] + batch["discount"] * q_next

    def update_critic(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        y = self.td_target(batch)
        q = self.critic(batch["obs"], batch["base"], batch["action"])  # (H, B)
        loss = F.mse_loss(q, y.unsqueeze(0).expand_as(q), reduction="none").mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.cfg.grad_clip)
        self.critic_opt.step()
        self._soft_update(self.critic, self.critic_target)
        self.n_updates += 1
        return {"losses/critic": loss.item() / self.cfg.num_q, "losses/q_mean": q.mean().item()}

    def update_actor(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        residual = self.actor(batch["obs"], batch["base"])
        action = (batch["base"] + residual).clamp(-1.0, 1.0)
        self.critic.requires_grad_(False)  # gradients flow through Q to the action only (~15% faster)
        try:
            q_heads = self.critic(batch["obs"], batch["base"], action)  # (H, B)
        finally:
            self.critic.requires_grad_(True)
        q = q_heads.mean(dim=0) if self.cfg.actor_q == "mean" else q_heads.min(dim=0).values
        loss = -q.mean() + self.cfg.residual_penalty * (residual / self.cfg.action_scale).pow(2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.grad_clip)
        self.actor_opt.step()
        self._soft_update(self.actor, self.actor_target)
        return {"losses/actor": loss.item(), "charts/residual_abs": residual.abs().mean().item()}

    def _soft_update(self, net: torch.nn.Module, target: torch.nn.Module) -> None:
        with torch.no_grad():
            for p, tp in zip(net.parameters(), target.parameters()):
                tp.lerp_(p, self.cfg.tau)

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).state_dict() for k in
                ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt")} | {
                "n_updates": self.n_updates}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, k).load_state_dict(sd[k])
        self.n_updates = int(sd["n_updates"])


# ==================================================================================== actor side
class ResidualTD3Explorer(Explorer):
    """Acts with a CPU copy of the residual actor: base + uniform warm-up noise until the learner says
    learning started, then base + residual + Gaussian noise; n-step transitions per env."""

    def __init__(self, cfg: ResidualTD3Config, env: EnvInfo, seed: int) -> None:
        self.cfg = cfg
        self.actor = ResidualActor(env.obs_dim, env.act_dim, cfg.actor_hidden, cfg.n_layers, cfg.action_scale)
        self.actor.eval()
        self.mask = env.residual_mask
        self.rng = np.random.default_rng(seed)
        self.learning_started = False
        self.rows = NStepRows(cfg.n_step, cfg.gamma)

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        load_module_weights(self.actor, weights, "actor.")
        self.learning_started = bool(weights["learning_started"])

    @torch.no_grad()
    def act(self, obs: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        cfg, shape = self.cfg, base.shape
        if self.learning_started:
            residual = self.actor(torch.as_tensor(obs), torch.as_tensor(base)).numpy()
            residual = residual + self.rng.normal(0, cfg.explore_std, shape).astype(np.float32) * self.mask
        else:
            residual = self.rng.uniform(-cfg.warmup_noise, cfg.warmup_noise, shape).astype(np.float32) * self.mask
        return np.clip(base + residual, -1.0, 1.0), {}

    def observe(self, obs, base, action, extras, step) -> dict[str, np.ndarray] | None:
        return self.rows(obs, base, action, step, human=extras.get("human"))


# ==================================================================================== learner side
def actor_updates_after(n: int, per_critic_update: float) -> int:
    """Actor updates owed after critic update n (1, 2, ...) at `per_critic_update` actor updates per
    critic update: 0.25 is one after every 4th (ResFiT's 1 per UTD 4), 0.5 every other, 2 two each."""
    return int(np.floor(n * per_critic_update + 1e-9) - np.floor((n - 1) * per_critic_update + 1e-9))


class ResidualTD3Learner(Learner):
    """Online + demo replay, `utd` critic updates per stored transition after `learning_starts`."""

    def __init__(self, setup: Any) -> None:
        from robo.learn.demos import demo_transitions

        cfg: ResidualTD3Config = setup.cfg
        env: EnvInfo = setup.env_info
        self.cfg = cfg
        self.device = setup.device
        self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        self.agent = ResidualTD3Agent(cfg, env.obs_dim, env.act_dim, setup.device)
        for net in (self.agent.actor, self.agent.actor_target):
            net.mask.copy_(torch.as_tensor(env.residual_mask))
        demo = None
        if setup.dataset is not None:
            demo = demo_transitions(setup.dataset, setup.base, setup.view, cfg.n_step, cfg.gamma,
                                    cfg.n_action_steps or None, cfg.seed)
        self.data = OffPolicyData(cfg.buffer_size, env.obs_dim, env.act_dim, demo, utd=cfg.utd,
                                  learning_starts=cfg.learning_starts, batch_size=cfg.batch_size,
                                  demo_fraction=cfg.demo_fraction, seed=cfg.seed + 1, device=setup.device)
        self.row_schema = self.data.row_schema
        self.schedule = self.data.schedule

    @property
    def n_updates(self) -> int:
        return self.agent.n_updates

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self.data.add(rows)

    def updates_owed(self) -> int:
        return self.data.updates_owed(self.n_updates)

    def rows_ahead(self) -> int:
        return self.data.rows_ahead(self.n_updates)

    def update(self) -> dict[str, float]:
        """One critic update, then the actor updates owed by now (once the critic has warmed up)."""
        metrics = self.agent.update_critic(self.data.batch())
        if self.n_updates >= self.cfg.critic_warmup_updates:
            for _ in range(actor_updates_after(self.n_updates, self.cfg.actor_updates_per_step / self.cfg.utd)):
                metrics.update(self.agent.update_actor(self.data.batch()))
        return metrics

    def weights(self) -> dict[str, np.ndarray]:
        w = module_weights(self.agent.actor, "actor.")
        w["learning_started"] = np.array(self.data.learning_started)
        return w

    def eval_policy(self) -> tuple[None, Any]:
        return None, self.agent.act

    def save_policy(self, run_dir: Path) -> None:
        from robo.data.atomic import atomic_path

        with atomic_path(Path(run_dir) / "residual_actor.pt") as tmp:
            torch.save({"obs_dim": self.obs_dim, "act_dim": self.act_dim, "actor": self.agent.actor.state_dict()}, tmp)

    def state_dict(self) -> dict[str, Any]:
        return {"agent": self.agent.state_dict(), "rng": self.data.rng.bit_generator.state}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.agent.load_state_dict(sd["agent"])
        self.data.rng.bit_generator.state = sd["rng"]


# ==================================================================================== the run's artefact
def load_residual_fn(run_dir: str | Path, device: str = "cpu"):
    """The trained residual of a run as `fn(obs (N, Do), base (N, Da)) -> residual (N, Da)` (numpy)."""
    from robo.config import load_config
    from robo.learn.common import load_torch

    run_dir = Path(run_dir)
    cfg = load_config(ResidualTD3Config, run_dir / "config.yaml")
    path = run_dir / "residual_actor.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the run has not finished)")
    saved = load_torch(path)
    actor = ResidualActor(saved["obs_dim"], saved["act_dim"], cfg.actor_hidden, cfg.n_layers, cfg.action_scale)
    actor.load_state_dict(saved["actor"])
    actor.eval()

    @torch.no_grad()
    def fn(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        return actor(torch.as_tensor(obs), torch.as_tensor(base)).numpy()

    return fn


ALGORITHM = Algorithm(
    name="td3",
    accepts_interventions=True,
    config_class=ResidualTD3Config,
    explorer=ResidualTD3Explorer,
    learner=ResidualTD3Learner,
    load_policy=load_residual_fn,
    description="residual TD3 on a frozen BC base (ResFiT): off-policy, critic ensemble, demos in every batch",
    cpu_profile="train/residual_td3_cpu.yaml",
)
