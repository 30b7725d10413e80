"""ReinFlow (Zhang et al., NeurIPS 2025): PPO over the K-step flow chain with a learned noise net: `--algo reinflow`.

Reads top to bottom: config -> noise net -> the PPO update over recorded chains -> explorer -> learner.
The actor side, the rows and the artefact are shared with RL-100 (robo.learn.chain_rl): the policy
itself acts on chunks (no base + residual); one row is one executed chunk.

    x_0 ~ N(0, I);  mu_k = x_k + v_theta(x_k, t_k, s) / K;  x_{k+1} ~ N(mu_k, sigma_theta'(k, s)^2)
    sigma_theta' = exp(0.5 * [log sigma_min^2 + (tanh(h) + 1) / 2 * (log sigma_max^2 - log sigma_min^2)])
    log pi(chain | s) = sum_k log N(x_{k+1}; mu_k, sigma_k^2),  one ratio per chain:
    r = exp((log pi_new - log pi_old) / (K * T * Da))      (per-dimension normalisation, as ReinFlow)
    loss = -min(r A, clip(r, 1 +- eps) A) - ent_coef * H(sigma) + vf_coef * (V(s) - R)^2 / 2

The noise net sees the observation encoding (detached) and a one-hot of the step k, as ReinFlow's
state + time conditioning; `sigma_max` follows ReinFlow's `learn_decay`: held for `noise_hold_ratio` of
the iterations, then cosine-decayed to sigma_min + `noise_decay_ratio` * (sigma_max - sigma_min).
Before the first gradient step of an update the new and old policies are the same weights, so every
ratio of the first minibatch is 1 (the sanity check ReinFlow's users trip over; tests/learn/test_reinflow.py).
The actor's learning rate is cosine-decayed to `actor_lr_decay_to` of its start over the run (Kitchen:
4.5e-5 -> 2e-5). `noise_steps=1` noises only the chain's last step (the CPU profile: at small batches a
ratio over one step's entries is far less noisy than over all K). Evaluation and the saved policy use
zero noise: the plain K-step Euler flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from robo.config import check_range
from robo.learn.algo import Algorithm, EnvInfo, load_module_weights, module_weights
from robo.learn.chain_rl import ChainLearner, ChainRLConfig, ChunkExplorer, load_tuned_policy, noise_mask
from robo.policies.common.chain import NoiseStd
from robo.spec import STATE


# ==================================================================================== config
@dataclass
class ReinFlowConfig(ChainRLConfig):
    """ReinFlow's hyper-parameters; defaults from its Franka Kitchen config (state, MuJoCo) unless noted."""

    total_env_steps: int = 1_000_000
    """Env steps to train for (Kitchen's config runs ~9.6 M)."""
    n_envs: int = 40
    """Parallel environments per actor (Kitchen: 40)."""
    rollout_chunks: int = 50
    """Decisions per env per iteration (Kitchen: 200 of 4-step chunks; ours are 8 steps)."""
    sigma_min: float = 0.05
    """Lower bound of the learned noise std (normalised action units)."""
    sigma_max: float = 0.12
    """Upper bound of the learned noise std at the start (decays, see noise_*_ratio)."""
    noise_hold_ratio: float = 0.35
    """Fraction of the iterations sigma_max is held before its cosine decay."""
    noise_decay_ratio: float = 0.7
    """sigma_max decays to sigma_min + this * (sigma_max - sigma_min)."""
    noise_hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the noise net (Tanh)."""
    update_epochs: int = 10
    """PPO epochs over each rollout."""
    n_minibatches: int = 4
    """Minibatches per epoch."""
    clip_coef: float = 0.01
    """PPO clip of the chain ratio (ReinFlow: 0.01; 0.001 advised for pixels)."""
    ent_coef: float = 0.03
    """Entropy bonus on the noise (ReinFlow's state tasks; Kitchen uses 0)."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    target_kl: float = 1.0
    """Stop an update's epochs once the approximate KL of the chain exceeds this."""
    actor_lr: float = 4.5e-5
    """Learning rate of the policy and the noise net at the first update."""
    actor_lr_decay_to: float = 0.44
    """The actor's learning rate at the last update, as a fraction of actor_lr: cosine-decayed (Kitchen:
    4.5e-5 -> 2e-5); 1 = constant."""
    critic_lr: float = 6.5e-4
    """Learning rate of the value net."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    critic_warmup_updates: int = 0
    """Updates (rollouts) that train only the value net before the policy moves."""
    profile: Literal["gpu", "cpu"] = "gpu"
    """Recorded profile name."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("sigma_min", self.sigma_min, 1e-4, None)
        check_range("sigma_max", self.sigma_max, self.sigma_min, None)
        check_range("noise_hold_ratio", self.noise_hold_ratio, 0.0, 1.0)
        check_range("noise_decay_ratio", self.noise_decay_ratio, 0.0, 1.0)
        self.noise_hidden = tuple(int(h) for h in self.noise_hidden)
        for name in ("update_epochs", "n_minibatches"):
            check_range(name, getattr(self, name), 1, None)
        check_range("clip_coef", self.clip_coef, 0.0, 1.0)
        check_range("actor_lr_decay_to", self.actor_lr_decay_to, 0.0, 1.0)
        check_range("critic_warmup_updates", self.critic_warmup_updates, 0, None)
        if self.batch_rows % self.n_minibatches:
            raise ValueError(f"n_minibatches={self.n_minibatches} must divide n_envs * rollout_chunks "
                             f"= {self.batch_rows}")

    def sigma_max_at(self, update: int, n_updates: int) -> float:
        """`learn_decay`: sigma_max for the rollout after `update` updates of `n_updates`."""
        hold = self.noise_hold_ratio * n_updates
        if update <= hold:
            return self.sigma_max
        low = self.sigma_min + self.noise_decay_ratio * (self.sigma_max - self.sigma_min)
        frac = min(1.0, (update - hold) / max(1.0, n_updates - hold))
        return low + 0.5 * (self.sigma_max - low) * (1 + math.cos(math.pi * frac))

    def actor_lr_at(self, update: int, n_updates: int) -> float:
        """The actor's learning rate for update `update` (0-based) of `n_updates`: cosine to actor_lr_decay_to."""
        frac = min(1.0, update / max(1, n_updates - 1))
        final = self.actor_lr * self.actor_lr_decay_to
        return final + 0.5 * (self.actor_lr - final) * (1 + math.cos(math.pi * frac))


# ==================================================================================== noise net
class NoiseNet(nn.Module):
    """sigma(k, cond) in [sigma_min, sigma_max]: (B, Dc) observation encoding + step k -> (B, T, Da), times
    `mask[k]` ((K, T, Da), chain_rl.noise_mask: noised steps, executed actions, used dims; 0 = no noise).

    The last layer starts at zero (sigma = the geometric mean of the bounds, whatever the seed)."""

    def __init__(self, cond_dim: int, n_steps: int, horizon: int, act_dim: int, cfg: ReinFlowConfig,
                 mask: Tensor) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = cond_dim + n_steps
        for h in cfg.noise_hidden:
            layers += [nn.Linear(d, h), nn.Tanh()]
            d = h
        layers.append(nn.Linear(d, horizon * act_dim))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()
        self.n_steps, self.shape = n_steps, (horizon, act_dim)
        self.register_buffer("log_var_min", torch.tensor(2 * math.log(cfg.sigma_min)))
        self.register_buffer("log_var_max", torch.tensor(2 * math.log(cfg.sigma_max)))
        self.register_buffer("mask", mask.clone())

    def set_sigma_max(self, sigma_max: float) -> None:
        self.log_var_max.fill_(2 * math.log(sigma_max))

    def log_std(self, k: int, cond: Tensor) -> Tensor:
        """(B, T, Da) log sigma before the mask."""
        step = torch.zeros(cond.shape[0], self.n_steps, device=cond.device)
        step[:, k] = 1.0
        u = (torch.tanh(self.net(torch.cat([cond.detach(), step], -1))) + 1) / 2
        return 0.5 * (self.log_var_min + u * (self.log_var_max - self.log_var_min)).view(cond.shape[0], *self.shape)

    def forward(self, k: int, x: Tensor, cond: Tensor) -> Tensor:
        return self.log_std(k, cond).exp() * self.mask[k]

    def entropy(self, cond: Tensor) -> Tensor:
        """Mean Gaussian entropy per noised entry over the noised steps (B, Dc) -> ()."""
        log_std = torch.cat([self.log_std(k, cond)[:, self.mask[k].bool()] for k in range(self.n_steps)
                             if self.mask[k].any()], 1)
        return (0.5 * math.log(2 * math.pi * math.e) + log_std).mean()


def make_noise_net(policy: Any, cfg: ReinFlowConfig, ta: int) -> NoiseNet:
    c = policy.config
    return NoiseNet(policy.obs_encoder.out_dim, c.num_inference_steps, c.horizon, policy.action_dim, cfg,
                    noise_mask(policy, ta, cfg.noise_steps))


# ==================================================================================== update
def chain_surrogate(policy: Any, noise: NoiseStd, obs: Tensor, samples: Tensor, old_logp: Tensor, adv: Tensor,
                    clip: float, per_step: bool, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Clipped PPO surrogate over recorded chains: obs (B, To, Ds), samples (B, K + 1, T, Da), old_logp
    (B, K), adv (B,), mask (K, T, Da) the noised entries. One ratio per chain (ReinFlow) or one per noised
    denoising step (`per_step`, RL-100 / DPPO), each log-ratio divided by the noised entries it sums over.
    Returns (loss, ratio, log_ratio, cond)."""
    cond = policy.encode_obs({STATE: obs})
    chain = samples.transpose(0, 1)  # (K + 1, B, T, Da)
    new = policy.chain_log_prob(None, chain, noise, cond=cond, per_step=True)  # (K, B)
    dims = mask.flatten(1).sum(1).to(new.device)  # (K,)
    if per_step:
        live = dims > 0
        log_ratio = (new - old_logp.T)[live] / dims[live, None]  # (K', B)
        a = adv.expand_as(log_ratio)
    else:
        log_ratio = (new.sum(0) - old_logp.sum(-1)) / dims.sum()  # per noised entry
        a = adv
    ratio = log_ratio.exp()
    loss = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
    return loss, ratio, log_ratio, cond


def ppo_update(policy: Any, value: nn.Module, noise: NoiseStd, opt: torch.optim.Optimizer, roll: dict[str, Tensor],
               cfg: Any, rng: np.random.Generator, mask: Tensor, *, per_step: bool = False,
               policy_frozen: bool = False, params: list[Tensor] | None = None) -> dict[str, float]:
    """PPO epochs over one rollout of chunk rows (robo.learn.chain_rl), early-stopped on KL; `mask`: the
    noised entries (K, T, Da). Returns metrics, `ratio_dev_first` = max |ratio - 1| on the first
    minibatch (0 up to rounding: the same weights made the rows)."""
    n = len(roll["obs"])
    mb = n // cfg.n_minibatches
    adv = (roll["adv"] - roll["adv"].mean()) / (roll["adv"].std() + 1e-8)
    params = params if params is not None else [p for g in opt.param_groups for p in g["params"]]
    stats: dict[str, float] = {}
    first = None
    for _epoch in range(cfg.update_epochs):
        order = torch.as_tensor(rng.permutation(n), device=adv.device)
        approx_kl = 0.0
        for start in range(0, n, mb):
            idx = order[start : start + mb]
            pg, ratio, log_ratio, cond = chain_surrogate(policy, noise, roll["obs"][idx], roll["samples"][idx],
                                                         roll["logp"][idx], adv[idx], cfg.clip_coef, per_step, mask)
            entropy = noise.entropy(cond) if isinstance(noise, NoiseNet) else None
            v_loss = 0.5 * (value(roll["obs"][idx]) - roll["ret"][idx]).pow(2).mean()
            loss = cfg.vf_coef * v_loss
            if not policy_frozen:
                loss = loss + pg - (cfg.ent_coef * entropy if entropy is not None else 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - log_ratio).mean().item()
                if first is None:
                    first = (ratio - 1).abs().max().item()
            stats = {"losses/policy": pg.item(), "losses/value": v_loss.item(), "losses/approx_kl": approx_kl,
                     "losses/clip_frac": ((ratio - 1).abs() > cfg.clip_coef).float().mean().item()}
            if entropy is not None:
                stats["losses/noise_entropy"] = entropy.item()
        if approx_kl > cfg.target_kl:
            break
    return {**stats, "ratio_dev_first": float(first or 0.0)}


# ==================================================================================== actor side
class ReinFlowExplorer(ChunkExplorer):
    """The shared chunk explorer with ReinFlow's learned noise net."""

    algo_name = "reinflow"

    def __init__(self, cfg: ReinFlowConfig, env: EnvInfo, seed: int) -> None:
        super().__init__(cfg, env, seed)
        self.noise_net = make_noise_net(self.policy, cfg, self.ta).eval()

    def noise(self) -> NoiseStd:
        return self.noise_net

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        super().load_weights(weights)
        load_module_weights(self.noise_net, weights, "noise.")


# ==================================================================================== learner side
class ReinFlowLearner(ChainLearner):
    """One PPO iteration per rollout (n_envs * rollout_chunks rows); the rows are used once."""

    algo_name = "reinflow"

    def __init__(self, setup: Any) -> None:
        super().__init__(setup)
        cfg: ReinFlowConfig = self.cfg
        self.noise = make_noise_net(self.policy, cfg, self.ta).to(self.device)
        self.opt = torch.optim.Adam([
            {"params": [*self.policy.parameters(), *self.noise.parameters()], "lr": cfg.actor_lr},
            {"params": self.value.parameters(), "lr": cfg.critic_lr}])
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.total_updates = max(1, math.ceil(cfg.total_env_steps / (cfg.batch_rows * self.ta)))

    def update(self) -> dict[str, float]:
        cfg: ReinFlowConfig = self.cfg
        roll = self.take_rollout()
        warmup = self._n_updates < cfg.critic_warmup_updates
        actor_lr = cfg.actor_lr_at(self._n_updates, self.total_updates)
        self.opt.param_groups[0]["lr"] = actor_lr
        metrics = ppo_update(self.policy, self.value, self.noise, self.opt, roll, cfg, self.rng, self.noise.mask,
                             policy_frozen=warmup)
        self._n_updates += 1
        # the next rollout is collected with this sigma_max, so its first minibatch's ratio is 1 again
        sigma_max = cfg.sigma_max_at(self._n_updates, self.total_updates)
        self.noise.set_sigma_max(sigma_max)
        return {**metrics, "charts/sigma_max": sigma_max, "charts/actor_lr": actor_lr}

    def weights(self) -> dict[str, np.ndarray]:
        return {**super().weights(), **module_weights(self.noise, "noise.")}

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "value": self.value.state_dict(), "noise": self.noise.state_dict(),
                "opt": self.opt.state_dict(), "n_updates": self._n_updates, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for name in ("policy", "value", "noise", "opt"):
            getattr(self, name).load_state_dict(sd[name])
        self._n_updates = int(sd["n_updates"])
        self.rng.bit_generator.state = sd["rng"]
        self.drop_used_rows()


def load_reinflow_policy(run_dir: str | Path) -> Any:
    """The fine-tuned flow policy of a finished run (an ordinary robo checkpoint in `<run>/policy`)."""
    return load_tuned_policy(run_dir)


ALGORITHM = Algorithm(
    name="reinflow",
    config_class=ReinFlowConfig,
    explorer=ReinFlowExplorer,
    learner=ReinFlowLearner,
    load_policy=load_reinflow_policy,
    description="ReinFlow: PPO over the flow policy's K-step chain with a learned noise net (the policy itself)",
    cpu_profile="train/reinflow_cpu.yaml",
    residual=False,
    runs_base=False,
)
