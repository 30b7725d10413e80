"""RL on the chunk policy itself (ReinFlow, RL-100): the shared actor side, rows, value net and artefact.

Both algorithms act with their own copy of the BC policy (no base + residual) and fine-tune all of it.
Time is cut into slots of Ta = n_action_steps env steps, the same for every env. At a slot's first step
every env starts a *decision*: the policy's denoising chain with Gaussian noise injected after each
step (`ChunkPolicy.denoise_chain`, policies/common/chain.py), whose chunk is executed open loop for the
slot, with the same observation window and chunk execution as the `ChunkExecutor` that evaluates it
(history padded at episode start, actions from the current step on). An episode that ends inside a
slot closes its decision early; its next episode runs the deterministic policy (zero noise) until the
slot ends. So every env makes exactly one decision per slot and a rollout of `rollout_chunks` slots is
n_envs * rollout_chunks rows: a fixed PPO batch, aligned across envs as in DPPO and ReinFlow, whose env
step executes a whole chunk.

A row is one decision, an SMDP transition of n <= Ta env steps:

    obs, next_obs   (To, Ds)       raw state windows at the decision and after it
    samples         (K + 1, T, Da) the chain x_0 .. x_K (normalised action space)
    logp            (K,)           log N(x_{k+1}; mu_k, sigma_k^2) of each denoising step, acting weights
    reward          ()             sum_j gamma^j r_j over the executed steps
    discount        ()             gamma^n, 0 when the episode terminated
    done            ()             1 when the episode ended in this decision (terminated, truncated, dropped)
    first           ()             1 for the first decision of an episode (an OPE start state)
    adv, ret        ()             GAE (discount gamma^n, lambda) with the acting value net; ret = adv + V(obs)

The value net is V(s) on the normalised state window (the policy's own state normaliser). The fine-tuned
policy is saved as an ordinary robo checkpoint in `<run>/policy/` (`robo eval`, `robo serve`, a
residual's `--base` and deployment read it like any BC checkpoint).
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from robo.config import check_range
from robo.learn.algo import (
    EnvInfo,
    Explorer,
    Learner,
    RLConfig,
    RowSchema,
    load_module_weights,
    module_weights,
)
from robo.learn.replay import OnPolicyRollouts
from robo.policies.common.chain import NoiseStd, gaussian_log_prob
from robo.policies.residual.model import mlp
from robo.spec import STATE

POLICY_DIR = "policy"


# ==================================================================================== shared config
@dataclass
class ChainRLConfig(RLConfig):
    """Fields of the algorithms that fine-tune the chunk policy itself (ReinFlow, RL-100)."""

    total_env_steps: int = 50_000
    """Env steps (all envs) to train for; a row is one executed chunk of n_action_steps env steps."""
    n_envs: int = 8
    """Parallel environments per actor (their chains sampled in one batch)."""
    rollout_chunks: int = 25
    """Decisions (chunks) per env per rollout: a PPO batch is n_envs * rollout_chunks rows."""
    gamma: float = 0.99
    """Discount per env step (a chunk of n steps is discounted by gamma^n)."""
    gae_lambda: float = 0.95
    """GAE lambda (per decision)."""
    noise_steps: int = 0
    """Denoising steps that get noise, the chain's last ones (0 = all K, as ReinFlow; 1 = only the last step,
    RLinf's ReinFlow path: fewer noised entries, a less noisy likelihood ratio)."""
    value_hidden: int = 256
    """Width of the value net (and of RL-100's critics)."""
    value_layers: int = 3
    """Hidden layers of the value net."""
    mask_unused_dims: bool = False
    """Unused here (no residual): the policy acts on every dim it was trained on."""
    eval_every: int = 10_000
    """Env steps between evaluations (fixed seeds, deterministic policy: zero chain noise)."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation."""
    final_eval_episodes: int = 50
    """Episodes of the final base vs fine-tuned comparison."""
    max_actor_lead: int = 0
    """On-policy: actors wait for the weights of each update (0)."""
    profile: Literal["gpu", "cpu"] = "gpu"
    """Recorded profile name."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("rollout_chunks", self.rollout_chunks, 1, None)
        check_range("noise_steps", self.noise_steps, 0, None)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("value_hidden", self.value_hidden, 1, None)
        check_range("value_layers", self.value_layers, 1, None)
        if not self.uses_base:
            raise ValueError("base=none: ReinFlow / RL-100 fine-tune a BC chunk policy; give base (or leave it "
                             "empty for the embedded default)")

    @property
    def batch_rows(self) -> int:
        return self.n_envs * self.rollout_chunks


def chunk_steps(cfg: ChainRLConfig, policy: Any) -> int:
    """Ta: env steps of each executed chunk (the config's, else the policy's), checked against its chunk."""
    ta = int(cfg.n_action_steps or policy.config.n_action_steps)
    longest = policy.config.horizon - policy.config.n_obs_steps + 1
    if ta > longest:
        raise ValueError(f"n_action_steps={ta} is out of range [1, {longest}] (the policy's chunk is {longest} steps)")
    return ta


def check_policy(base: Any, name: str) -> None:
    """One-line errors for a base these algorithms cannot fine-tune."""
    if base is None:
        raise ValueError(f"{name} fine-tunes a BC chunk policy: the run has no base (base=none)")
    if not hasattr(base, "denoise_chain"):
        raise ValueError(f"{name}: the base {type(base).__name__} has no denoising chain (needs a robo "
                         f"diffusion or flow checkpoint, not a served policy)")
    if getattr(base, "image_keys", ()):
        raise ValueError(f"{name}: the base uses cameras {list(base.image_keys)}; fine-tuning the policy itself "
                         f"supports state-only policies (rows carry state windows)")


def chain_schema(policy: Any, n_steps: int) -> RowSchema:
    """The row schema of a chunk-level learner (see the module docstring)."""
    c = policy.config
    f32 = np.dtype(np.float32)
    window = (c.n_obs_steps, policy.state_dim)
    return {"obs": (window, f32), "next_obs": (window, f32),
            "samples": ((n_steps + 1, c.horizon, policy.action_dim), f32), "logp": ((n_steps,), f32),
            "reward": ((), f32), "discount": ((), f32), "done": ((), f32), "first": ((), f32), "adv": ((), f32),
            "ret": ((), f32)}


# ==================================================================================== networks
class ValueNet(nn.Module):
    """V(s) on the normalised state window: (B, To, Ds) raw -> (B,). The last layer starts at zero, so
    the first advantages are the plain lambda-returns, not a random net's differences."""

    def __init__(self, policy: Any, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.state_norm = copy.deepcopy(policy.state_norm)  # fixed stats (non-persistent buffers)
        self.net = mlp(policy.config.n_obs_steps * policy.state_dim, hidden, n_layers, 1)
        with torch.no_grad():
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()

    def forward(self, window: Tensor) -> Tensor:
        return self.net(self.state_norm(window).flatten(1)).squeeze(-1)


def noise_mask(policy: Any, ta: int, noise_steps: int = 0) -> Tensor:
    """(K, T, Da) 0/1: where the chain's noise goes. The last `noise_steps` denoising steps (0 = all), and
    in each only the executed steps of the chunk (To - 1 .. To - 2 + Ta) and the action dims the demos used:
    noise elsewhere never reaches the env, so it would only add variance to the likelihood ratio (and a dim
    the demos never moved would drift)."""
    from robo.learn.residual_env import active_action_dims

    c = policy.config
    k = c.num_inference_steps
    if noise_steps > k:
        raise ValueError(f"noise_steps={noise_steps} is out of range [0, {k}] (the policy's chain has {k} steps)")
    mask = torch.zeros(k, c.horizon, policy.action_dim)
    mask[k - (noise_steps or k):, c.n_obs_steps - 1 : c.n_obs_steps - 1 + ta] = 1.0
    return mask * torch.from_numpy(active_action_dims(policy.stats, policy.action_dim))


def executed_actions(samples: Tensor, n_obs_steps: int, ta: int) -> Tensor:
    """The executed part of each chain's chunk, normalised: samples (K + 1, B, T, Da) -> (B, Ta * Da)."""
    x = samples[-1].clamp(-1.0, 1.0)[:, n_obs_steps - 1 : n_obs_steps - 1 + ta]
    return x.flatten(1)


def step_log_probs(chain: Any) -> Tensor:
    """(K, B) per-step log-probabilities of a recorded `DenoisingChain`."""
    return torch.stack([gaussian_log_prob(chain.samples[i + 1], chain.means[i], chain.stds[i])
                        for i in range(chain.n_steps)])


# ==================================================================================== actor side
@dataclass
class _Decision:
    """One env's open decision: what the row needs, accumulated over the slot's steps."""

    obs: np.ndarray
    samples: np.ndarray
    logp: np.ndarray
    first: bool
    reward: float = 0.0
    n: int = 0


class ChunkExplorer(Explorer):
    """Acts with a copy of the policy on chunks (module docstring); subclasses choose the chain noise
    (`noise()`), e.g. ReinFlow's learned noise net or RL-100's fixed sigma."""

    on_policy = True
    raw_obs = True
    algo_name: ClassVar[str] = "chain RL"

    def __init__(self, cfg: ChainRLConfig, env: EnvInfo, seed: int) -> None:
        check_policy(env.base, self.algo_name)
        self.cfg = cfg
        self.policy = copy.deepcopy(env.base).cpu().eval()
        self.value = ValueNet(self.policy, cfg.value_hidden, cfg.value_layers).eval()
        self.ta = chunk_steps(cfg, self.policy)
        self.to = self.policy.config.n_obs_steps
        self.scaler = env.scaler
        self.generator = torch.Generator().manual_seed(seed)
        n = cfg.n_envs
        self.history: list[deque[np.ndarray]] = [deque(maxlen=self.to) for _ in range(n)]
        self.queue: list[np.ndarray] = [np.zeros((0, env.act_dim), np.float32) for _ in range(n)]
        self.open: list[_Decision | None] = [None] * n
        self.rollout: list[list[dict[str, Any]]] = []  # per slot: one closed decision per env
        self.closed: list[dict[str, Any] | None] = [None] * n
        self.fresh = [True] * n  # no decision yet in the env's current episode
        self.slot_step = 0

    # ------------------------------------------------------------------------------- to override
    def noise(self) -> NoiseStd:
        """The chain's noise: a number, a (K,) tensor or a callable noise(k, x_k, cond)."""
        raise NotImplementedError

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        load_module_weights(self.policy, weights, "policy.")
        load_module_weights(self.value, weights, "value.")

    # ------------------------------------------------------------------------------- acting
    def _windows(self, envs: list[int]) -> np.ndarray:
        return np.stack([np.stack(self.history[i]) for i in envs])

    @torch.no_grad()
    def act(self, obs: np.ndarray, base: np.ndarray, raw: list[dict[str, np.ndarray]] | None = None):
        if raw is None:
            raise ValueError(f"{self.algo_name} acts on raw observations (Collector passes raw=)")
        n = len(raw)
        for i in range(n):
            frame = np.asarray(raw[i][STATE], np.float32)
            if self.history[i]:
                self.history[i].append(frame)
            else:  # episode start: pad by repeating the first observation, as the ChunkExecutor does
                self.history[i].extend([frame] * self.to)
        if self.slot_step == 0:  # every env decides: one batched noisy chain
            windows = self._windows(list(range(n)))
            chain = self.policy.denoise_chain({STATE: torch.from_numpy(windows)}, self.noise(),
                                              generator=self.generator)
            chunks = self.policy.chain_actions(chain.samples[-1]).numpy()[:, : self.ta]
            logp = step_log_probs(chain).numpy()
            for i in range(n):
                self.open[i] = _Decision(windows[i], chain.samples[:, i].numpy(), logp[:, i], self.fresh[i])
                self.queue[i] = chunks[i]
                self.fresh[i] = False
        filler = [i for i in range(n) if len(self.queue[i]) == 0]  # a new episode inside the slot
        if filler:
            chunks = self.policy.predict_chunk({STATE: torch.from_numpy(self._windows(filler))},
                                               generator=self.generator).numpy()
            for j, i in enumerate(filler):
                self.queue[i] = chunks[j, : self.ta - self.slot_step]
        actions = np.stack([q[0] for q in self.queue])
        self.queue = [q[1:] for q in self.queue]
        return self.scaler.normalize(actions), {}

    def _close(self, i: int, d: _Decision, next_raw: dict[str, np.ndarray], terminal: bool, done: bool) -> None:
        window = list(self.history[i])[1:] + [np.asarray(next_raw[STATE], np.float32)]
        self.closed[i] = {"obs": d.obs, "next_obs": np.stack(window), "samples": d.samples, "logp": d.logp,
                          "reward": d.reward, "discount": 0.0 if terminal else self.cfg.gamma ** d.n,
                          "done": float(done), "first": float(d.first)}
        self.open[i] = None

    @torch.no_grad()
    def observe(self, obs, base, action, extras, step) -> dict[str, np.ndarray] | None:
        next_raw = step.next_raw
        for i in range(len(self.queue)):
            d = self.open[i]
            ended = bool(step.terminated[i] or step.truncated[i] or not step.valid[i])
            if d is not None:
                if step.valid[i]:  # a dropped step adds nothing (its reward is not trusted)
                    d.reward += self.cfg.gamma ** d.n * float(step.reward[i])
                d.n += 1
                if ended:
                    self._close(i, d, next_raw[i], terminal=bool(step.terminated[i] and step.valid[i]), done=True)
            if ended:  # the env was reset: new history, and the deterministic policy until the slot ends
                self.history[i].clear()
                self.queue[i] = self.queue[i][:0]
                self.fresh[i] = True
        self.slot_step += 1
        if self.slot_step < self.ta:
            return None
        self.slot_step = 0
        for i, d in enumerate(self.open):
            if d is not None:
                self._close(i, d, next_raw[i], terminal=False, done=False)
        self.rollout.append(list(self.closed))
        self.closed = [None] * len(self.queue)
        if len(self.rollout) < self.cfg.rollout_chunks:
            return None
        rows = self._rows()
        self.rollout = []
        return rows

    def _rows(self) -> dict[str, np.ndarray]:
        """The rollout (slots x envs) as rows (slot-major), with GAE from the acting value net."""
        cols = {k: np.stack([np.stack([d[k] for d in slot]) for slot in self.rollout]).astype(np.float32)
                for k in self.rollout[0][0]}  # (S, N, ...)
        s, n = cols["reward"].shape
        v = self.value(torch.from_numpy(cols["obs"].reshape(s * n, *cols["obs"].shape[2:]))).numpy().reshape(s, n)
        nv = self.value(torch.from_numpy(cols["next_obs"].reshape(s * n, *cols["obs"].shape[2:]))).numpy()
        adv = gae(cols["reward"], cols["discount"], cols["done"], v, nv.reshape(s, n), self.cfg.gae_lambda)
        cols["adv"], cols["ret"] = adv, adv + v
        return {k: x.reshape(s * n, *x.shape[2:]).astype(np.float32) for k, x in cols.items()}


def gae(reward: np.ndarray, discount: np.ndarray, done: np.ndarray, value: np.ndarray, next_value: np.ndarray,
        lam: float) -> np.ndarray:
    """GAE over decisions, (S, N) arrays in time order: delta = R + disc * V(s') - V(s), accumulated with
    disc * lambda until a decision that ended its episode (a truncation is bootstrapped through V(s'),
    a termination has disc 0)."""
    adv = np.zeros_like(reward)
    running = np.zeros(reward.shape[1], np.float32)
    for t in reversed(range(reward.shape[0])):
        delta = reward[t] + discount[t] * next_value[t] - value[t]
        running = delta + (1.0 - done[t]) * discount[t] * lam * running
        adv[t] = running
    return adv


# ==================================================================================== learner side
class ChainLearner(Learner):
    """The shared learner plumbing: the trainable policy copy, the value net, the rollout schedule (one
    update per n_envs * rollout_chunks rows), weights out and the checkpoint artefact."""

    algo_name: ClassVar[str] = "chain RL"

    def __init__(self, setup: Any) -> None:
        cfg: ChainRLConfig = setup.cfg
        check_policy(setup.base, self.algo_name)
        self.cfg, self.setup, self.device = cfg, setup, setup.device
        self.policy = copy.deepcopy(setup.base).to(setup.device).eval()  # no dropout / batch norm: eval = train
        self.value = ValueNet(self.policy, cfg.value_hidden, cfg.value_layers).to(setup.device)
        self.ta = chunk_steps(cfg, self.policy)
        self.env_steps_per_row = self.ta
        self.row_schema = chain_schema(self.policy, self.policy.config.num_inference_steps)
        self.rollout_rows = OnPolicyRollouts(cfg.batch_rows)
        self.schedule = self.rollout_rows.schedule
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

    def take_rollout(self) -> dict[str, Tensor]:
        """The next rollout's rows (the oldest batch_rows queued) as tensors on the learner's device."""
        return {k: torch.as_tensor(v, device=self.device) for k, v in self.rollout_rows.take().items()}

    def drop_used_rows(self) -> None:
        """After a resume: rows replayed before `load_state_dict` that earlier updates already used."""
        self.rollout_rows.drop_used(self._n_updates)

    def weights(self) -> dict[str, np.ndarray]:
        return {**module_weights(self.policy, "policy."), **module_weights(self.value, "value.")}

    def eval_policy(self) -> tuple[Any, None]:
        return self.policy, None

    def save_policy(self, run_dir: Path) -> None:
        save_tuned_policy(self.policy, Path(run_dir), self.cfg.task, self.setup, self.algo_name)


def save_tuned_policy(policy: Any, run_dir: Path, task: str, setup: Any, algo: str) -> Path:
    """The fine-tuned policy as an ordinary checkpoint in `run_dir/policy` (+ train_info.json naming the
    task, the demos and the checkpoint it was fine-tuned from)."""
    from robo.data.atomic import atomic_write_json

    out = run_dir / POLICY_DIR
    copy.deepcopy(policy).cpu().save(out)
    dataset = getattr(setup.dataset, "root", None)
    atomic_write_json(out / "train_info.json", {"env_id": task, "policy": policy.config.name,
                                                 "dataset": str(dataset) if dataset else None,
                                                 "finetuned_by": algo, "finetuned_from": str(setup.base_checkpoint)})
    return out


def load_tuned_policy(run_dir: str | Path) -> Any:
    """The fine-tuned chunk policy of a finished ReinFlow / RL-100 run (`Algorithm.load_policy`)."""
    from robo.policies import load_policy

    path = Path(run_dir) / POLICY_DIR
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: missing (the run has not finished)")
    return load_policy(path)
