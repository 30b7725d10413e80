"""The offline pieces of RL-100 (robo.learn.rl100): chunk-level transitions, IQL critics, and the OPE gate.

Transitions are SMDP steps of one executed chunk, in the policy's own spaces:

    obs, next_obs (N, To, Ds)  raw state windows;  action (N, Ta * Da) the executed chunk, normalised
    reward (N,) sum_j gamma^j r_j;  discount (N,) gamma^n (0 at termination);  first (N,) episode start

They come from a demo dataset (every frame starts a chunk: stride 1) and from the rows the policy
collected (robo.learn.chain_rl, one per decision).

IQL (Kostrikov et al. 2022), on those chunks: V(s) regresses min(Q1, Q2)(s, a) of the target critics with
an expectile tau (> 0.5 leans to the better actions in the data), Q(s, a) regresses R + gamma^n V(s').
A(s, a) = min Q(s, a) - V(s) is what the policy improves on.

The OPE gate is fitted-Q evaluation (FQE, Le et al. 2019): for a fixed policy pi, Q_pi regresses
R + gamma^n Q_pi'(s', pi(s')) on the same transitions (target net, Polyak), and J(pi) = mean over the
episodes' first decisions of Q_pi(s_0, pi(s_0)): the discounted success from the start states.
Why FQE and not RL-100's dynamics-model ensemble: our rewards are sparse successes of contact-rich
episodes (peg insertion, grasps) where a learnt one-step model compounds errors over 10-20 chunk steps
and needs a learnt reward; FQE needs neither, reuses the critics' machinery, and compares two policies
on the same data and seed (a paired estimate). Its known weakness is extrapolation to actions far from
the data, which the gate limits by comparing candidates that stay near the data (PPO-clipped updates
of a BC policy) and by a relative margin.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from robo.learn.chain_rl import ValueNet, executed_actions
from robo.policies.residual.model import mlp
from robo.spec import ACTION, STATE


# ==================================================================================== transitions
@dataclass
class Transitions:
    """Chunk-level transitions (see the module docstring); tensors on one device."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    discount: Tensor
    next_obs: Tensor
    first: Tensor

    def __len__(self) -> int:
        return len(self.reward)

    def to(self, device: torch.device) -> Transitions:
        return Transitions(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @staticmethod
    def cat(parts: list[Transitions]) -> Transitions:
        return Transitions(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Transitions)})

    def sample(self, n: int, rng: np.random.Generator) -> Transitions:
        idx = torch.as_tensor(rng.integers(0, len(self), n), device=self.reward.device)
        return Transitions(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def demo_transitions(dataset: Any, policy: Any, ta: int, gamma: float) -> Transitions:
    """A demo dataset as chunk transitions, one starting at every frame (windows padded at the start by
    repeating the first frame, actions past the end by the last action, as the BC windows are); a chunk
    that runs past a non-terminal end (no next state recorded) is left out."""
    to = policy.config.n_obs_steps
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(Transitions)}
    for ep in range(dataset.num_episodes):
        data = dataset.episode(ep)
        states = np.asarray(data[STATE], np.float32)
        n = len(states)
        with torch.no_grad():
            acts = policy.action_norm(torch.as_tensor(np.asarray(data[ACTION], np.float32))).clamp(-1, 1).numpy()
        reward = np.asarray(data.get("next.reward", np.zeros(n)), np.float32)
        success_end = bool(reward[-1] > 0)
        padded = np.concatenate([np.repeat(states[:1], to - 1, 0), states])  # window t = padded[t : t + to]
        acts_pad = np.concatenate([acts, np.repeat(acts[-1:], ta, 0)])
        for t in range(n):
            m = min(ta, n - t)
            ends = t + m == n
            if ends and not success_end:
                continue
            parts["obs"].append(padded[t : t + to])
            parts["next_obs"].append(padded[min(t + m, n - 1) : min(t + m, n - 1) + to])
            parts["action"].append(acts_pad[t : t + ta].reshape(-1))
            parts["reward"].append(np.float32(np.sum(gamma ** np.arange(m) * reward[t : t + m])))
            parts["discount"].append(np.float32(0.0 if ends else gamma**m))
            parts["first"].append(np.float32(t == 0))
    return Transitions(**{k: torch.as_tensor(np.stack(v)) for k, v in parts.items()})


def row_transitions(rows: dict[str, np.ndarray], n_obs_steps: int, ta: int) -> Transitions:
    """Collected chunk rows (robo.learn.chain_rl) as transitions."""
    samples = torch.as_tensor(rows["samples"]).transpose(0, 1)
    return Transitions(obs=torch.as_tensor(rows["obs"]), action=executed_actions(samples, n_obs_steps, ta),
                       reward=torch.as_tensor(rows["reward"]), discount=torch.as_tensor(rows["discount"]),
                       next_obs=torch.as_tensor(rows["next_obs"]), first=torch.as_tensor(rows["first"]))


# ==================================================================================== critics
class QNet(nn.Module):
    """Q(s, a) on the normalised state window and the executed chunk: (B, To, Ds), (B, Ta * Da) -> (B,).
    `state_norm`: the policy's state normaliser (copied); `obs_dim` = To * Ds."""

    def __init__(self, state_norm: nn.Module, obs_dim: int, action_dim: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.state_norm = copy.deepcopy(state_norm)
        self.net = mlp(obs_dim + action_dim, hidden, n_layers, 1)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.net(torch.cat([self.state_norm(obs).flatten(1), action], -1)).squeeze(-1)


def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, tau)


class IQLCritics(nn.Module):
    """Double Q + V (IQL), with Polyak target Qs."""

    def __init__(self, policy: Any, ta: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        dims = (policy.state_norm, policy.config.n_obs_steps * policy.state_dim, ta * policy.action_dim)
        self.q1, self.q2 = QNet(*dims, hidden, n_layers), QNet(*dims, hidden, n_layers)
        self.v = ValueNet(policy, hidden, n_layers)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)

    def q_min(self, obs: Tensor, action: Tensor, target: bool = False) -> Tensor:
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        return torch.min(q1(obs, action), q2(obs, action))

    @torch.no_grad()
    def advantage(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.q_min(obs, action) - self.v(obs)


def fit_iql(critics: IQLCritics, data: Transitions, steps: int, batch: int, lr: float, expectile: float,
            tau: float, rng: np.random.Generator, on_step: Callable[[], None] | None = None) -> dict[str, float]:
    """`steps` IQL updates of V (expectile of min target Q - V) and Q (TD on R + gamma^n V(s')); `on_step`
    is called after each (a progress line)."""
    q_opt = torch.optim.Adam([*critics.q1.parameters(), *critics.q2.parameters()], lr=lr)
    v_opt = torch.optim.Adam(critics.v.parameters(), lr=lr)
    v_loss = q_loss = torch.zeros(())
    for _ in range(steps):
        b = data.sample(batch, rng)
        with torch.no_grad():
            q_t = critics.q_min(b.obs, b.action, target=True)
        diff = q_t - critics.v(b.obs)
        v_loss = (torch.abs(expectile - (diff < 0).float()) * diff.pow(2)).mean()
        v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        v_opt.step()
        with torch.no_grad():
            target = b.reward + b.discount * critics.v(b.next_obs)
        q_loss = ((critics.q1(b.obs, b.action) - target).pow(2).mean()
                  + (critics.q2(b.obs, b.action) - target).pow(2).mean())
        q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        q_opt.step()
        polyak(critics.q1_target, critics.q1, tau)
        polyak(critics.q2_target, critics.q2, tau)
        if on_step is not None:
            on_step()
    return {"iql/v_loss": v_loss.item(), "iql/q_loss": q_loss.item()}


# ==================================================================================== OPE gate
@torch.no_grad()
def policy_actions(policy: Any, obs: Tensor, ta: int, seed: int, batch: int = 1024) -> Tensor:
    """The deterministic policy's executed chunks (zero chain noise, initial noise from `seed`) at windows
    obs (N, To, Ds) -> (N, Ta * Da), normalised."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(obs), batch):
        chain = policy.denoise_chain({STATE: obs[start : start + batch]}, 0.0, generator=gen)
        out.append(executed_actions(chain.samples, policy.config.n_obs_steps, ta))
    return torch.cat(out)


def fitted_q_evaluation(data: Transitions, next_action: Tensor, first_action: Tensor, q: nn.Module, steps: int,
                        batch: int, lr: float, tau: float, rng: np.random.Generator,
                        on_step: Callable[[], None] | None = None) -> float:
    """FQE of a fixed policy given its actions at every next state (N, A) and at the first decisions
    (data.first): J = mean Q_pi(s_0, pi(s_0)). `q` is a fresh Q net (trained here)."""
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.as_tensor(rng.integers(0, len(data), batch), device=data.reward.device)
        with torch.no_grad():
            y = data.reward[idx] + data.discount[idx] * target(data.next_obs[idx], next_action[idx])
        loss = (q(data.obs[idx], data.action[idx]) - y).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        polyak(target, q, tau)
        if on_step is not None:
            on_step()
    first = data.first > 0
    with torch.no_grad():
        return float(q(data.obs[first], first_action).mean())


@dataclass
class GateConfig:
    """Settings of the OPE gate (fields of RL100Config, copied here so the gate stands alone)."""

    steps: int = 2000
    """FQE updates per estimate."""
    batch: int = 256
    """FQE batch size."""
    lr: float = 3e-4
    """FQE learning rate."""
    tau: float = 0.005
    """FQE target Polyak rate."""
    hidden: int = 256
    """FQE Q-net width."""
    n_layers: int = 2
    """FQE Q-net hidden layers."""
    margin: float = 0.05
    """Accept only when J(candidate) > J(incumbent) + margin * |J(incumbent)| (RL-100's ~5%)."""
    seed: int = 0
    """Seed of the FQE nets, batches and the policies' initial noise (the same for every policy)."""


@dataclass
class GateDecision:
    accepted: bool
    candidate: float
    """FQE estimate of the candidate."""
    incumbent: float
    """FQE estimate of the incumbent."""


class OPEGate:
    """Fitted-Q evaluation of policies on fixed transitions; `decide(candidate, incumbent)` accepts the
    candidate only when it is estimated better by the margin. Estimates are cached per policy object
    version by the caller (`estimate` is deterministic for given weights, data and seed)."""

    def __init__(self, data: Transitions, cfg: GateConfig, q_factory: Any, ta: int) -> None:
        self.data, self.cfg, self.q_factory, self.ta = data, cfg, q_factory, ta

    def estimate(self, act: Any, on_step: Callable[[], None] | None = None) -> float:
        """J of a policy given as `act(obs (N, To, Ds)) -> (N, Ta * Da)` (e.g. `policy_actions`); `on_step`
        is called after each FQE update."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        q = self.q_factory().to(self.data.reward.device)
        first = self.data.obs[self.data.first > 0]
        return fitted_q_evaluation(self.data, act(self.data.next_obs), act(first), q, cfg.steps, cfg.batch, cfg.lr,
                                   cfg.tau, np.random.default_rng(cfg.seed), on_step)

    def decide(self, candidate: float, incumbent: float) -> GateDecision:
        return GateDecision(candidate > incumbent + self.cfg.margin * abs(incumbent), candidate, incumbent)
