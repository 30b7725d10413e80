"""SAC from scratch with demos in the buffer (RLPD-style 50/50 sampling, no base policy).

The baseline of scripts/bench_residual.py: the same tasks, demos, critic ensemble, n-step replay and
evaluation as residual TD3, but the actor outputs the whole action (a tanh-Gaussian over [-1, 1])
instead of a bounded correction to a frozen base. Reads top to bottom: config -> actor -> update ->
loop.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robo.config import check_range, save_config
from robo.learn.common import Logger, ProgressLine, pick_device, set_seed
from robo.learn.evaluate import evaluate
from robo.learn.replay import NStepAccumulator, ReplayBuffer, Step, sample_mixed
from robo.learn.residual_env import ResidualVecEnv
from robo.policies.residual.model import CriticEnsemble, mlp


# ==================================================================================== config
@dataclass
class SACConfig:
    """SAC + demos (RLPD) hyper-parameters, sized like the residual CPU profile for a fair comparison."""

    task: str = "PandaPegInsert-v0"
    """Gymnasium task id."""
    seed: int = 0
    """Seed."""
    total_env_steps: int = 30_000
    """Environment steps."""
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
    """Critic updates per env step."""
    lr: float = 3e-4
    """Actor, critic and temperature learning rate."""
    init_temperature: float = 0.1
    """Initial entropy temperature."""
    learning_starts: int = 2_000
    """Random-action steps before updates."""
    buffer_size: int = 100_000
    """Online replay capacity."""
    eval_every: int = 5_000
    """Env steps between evaluations."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    eval_seed: int = 10_000
    """First evaluation seed."""
    device: str = "auto"
    """torch device."""

    def __post_init__(self) -> None:
        check_range("demo_fraction", self.demo_fraction, 0.0, 1.0)
        check_range("num_q_target", self.num_q_target, 1, self.num_q)


# ==================================================================================== actor
class TanhGaussianActor(nn.Module):
    """obs (B, Do) -> action in (-1, 1) with its log-probability (tanh-corrected)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, n_layers: int):
        super().__init__()
        self.net = mlp(obs_dim, hidden, n_layers, 2 * act_dim)

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(-5.0, 2.0)
        u = mu if deterministic else mu + log_std.exp() * torch.randn_like(mu)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mu) / log_std.exp()).pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        logp = logp - (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return a, logp


# ==================================================================================== update
def update(actor, critic, critic_target, log_alpha, opts, batch, cfg: SACConfig, target_entropy: float):
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


# ==================================================================================== loop
def train(cfg: SACConfig, run_dir: str | Path, dataset: Any | None) -> dict[str, Any]:
    from robo.learn.residual_td3 import ResidualTD3Config, relabel_demos

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    device = pick_device(cfg.device)
    save_config(cfg, run_dir / "config.yaml")
    stats = dataset.stats if dataset is not None else None
    envs = ResidualVecEnv(cfg.task, None, 1, cfg.seed, stats=stats)
    actor = TanhGaussianActor(envs.obs_dim, envs.act_dim, cfg.hidden, cfg.n_layers).to(device)
    critic = CriticEnsemble(envs.obs_dim, envs.act_dim, cfg.num_q, cfg.hidden, cfg.n_layers).to(device)
    critic_target = copy.deepcopy(critic).requires_grad_(False)
    log_alpha = torch.tensor(np.log(cfg.init_temperature), device=device, requires_grad=True)
    opts = {"actor": torch.optim.Adam(actor.parameters(), cfg.lr),
            "critic": torch.optim.Adam(critic.parameters(), cfg.lr),
            "alpha": torch.optim.Adam([log_alpha], cfg.lr)}
    relabel_cfg = ResidualTD3Config(task=cfg.task, n_step=cfg.n_step, gamma=cfg.gamma, seed=cfg.seed)
    demo = relabel_demos(dataset, None, envs, relabel_cfg) if dataset is not None else None
    online = ReplayBuffer(cfg.buffer_size, envs.obs_dim, envs.act_dim)
    acc = NStepAccumulator(cfg.n_step, cfg.gamma)
    rng = np.random.default_rng(cfg.seed)
    logger = Logger(run_dir)

    def policy_fn(o: np.ndarray, b: np.ndarray) -> np.ndarray:  # evaluate() adds this to a zero base
        with torch.no_grad():
            return actor(torch.as_tensor(o, device=device), deterministic=True)[0].cpu().numpy()

    evals = [{"env_steps": 0, "success_rate": evaluate(cfg.task, None, cfg.eval_episodes, seed=cfg.eval_seed,
                                                       residual=policy_fn, stats=stats).success_rate}]
    obs, _ = envs.reset()
    progress = ProgressLine(cfg.total_env_steps, "sac+demos")
    metrics: dict[str, float] = {}
    t0 = time.monotonic()
    for step in range(1, cfg.total_env_steps + 1):
        if step <= cfg.learning_starts:
            action = rng.uniform(-1, 1, size=(1, envs.act_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                action = actor(torch.as_tensor(obs, device=device))[0].cpu().numpy()
        res = envs.step(action)
        zeros = np.zeros(envs.act_dim, np.float32)
        kept = acc.push(Step(obs[0], zeros, action[0], float(res.reward[0]), res.next_obs[0], zeros,
                             bool(res.terminated[0]), bool(res.truncated[0]))) if res.valid[0] else acc.cut()
        for tr in kept:  # a dropped step (non-finite obs/reward) only closes the pending windows
            online.add(tr)
        obs = res.obs
        if step > cfg.learning_starts:
            for _ in range(cfg.utd):
                batch = sample_mixed(online, demo, cfg.batch_size, cfg.demo_fraction, rng, device)
                metrics = update(actor, critic, critic_target, log_alpha, opts, batch, cfg, -float(envs.act_dim))
        if step % cfg.eval_every == 0:
            sr = evaluate(cfg.task, None, cfg.eval_episodes, seed=cfg.eval_seed, residual=policy_fn,
                          stats=stats).success_rate
            evals.append({"env_steps": step, "success_rate": sr})
            logger.log(step, {**metrics, "eval/success_rate": sr})
        progress.update(step, {"eval_success": evals[-1]["success_rate"], "steps/s": step / (time.monotonic() - t0)})
    progress.close()
    envs.close()
    logger.close()
    return {"evals": evals, "env_steps": cfg.total_env_steps, "wall_clock_s": time.monotonic() - t0}
