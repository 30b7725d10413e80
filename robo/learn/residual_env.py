"""Vectorised environments seen through a frozen base policy, for residual RL.

`ResidualVecEnv` owns N task environments and a frozen chunked base policy. It exposes, per env:

    obs   (N, Do)  normalised observation features: (state - mean) / std from the base's stats, clipped
    base  (N, Da)  the base action for the current step, normalised to [-1, 1] by the env action bounds

and steps with a *combined* normalised action (base + residual, already clamped by the learner). The
base runs its chunks open loop through one batched `ChunkExecutor` (sync mode): a new chunk is
predicted (batched over the envs that need one) every `n_action_steps` steps, from the last
`n_obs_steps` observations.

Termination vs truncation is kept apart; ended envs are reset automatically and the transition's
true next observation is returned alongside the observation to act on next.

A step whose observation or reward is not finite (a NaN from a sensor, a diverged simulation) is
dropped: `valid[i]` is False, the env is reset (the rest of that episode cannot be trusted), the
step counts in `dropped_steps`, and learners store nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robo.policies.common.normalize import StateNormalizer
from robo.runtime.chunk_executor import ChunkExecutor
from robo.spec import ACTION, STATE


def check_task(task: str) -> None:
    """One-line ValueError for a task id robo cannot resolve (before any work starts); robo.sim.registry."""
    from robo.sim.registry import resolve_task

    resolve_task(task)


def make_env(task: str, /, **kwargs: Any) -> gym.Env:
    """Create a task env by id: robo's, a plug-in's or `package.module:Id` (robo.sim.registry)."""
    from robo.sim.registry import make_env as make_task_env

    return make_task_env(task, **kwargs)


def check_base_fits_task(base: Any, env: gym.Env, task: str) -> None:
    """Refuse a base trained for another action dimension or observation layout (one-line ValueError)."""
    spec = getattr(base, "spec", None)
    if spec is None:
        return
    act_dim = int(np.prod(env.action_space.shape))
    if spec.action_dim != act_dim:
        raise ValueError(f"the base outputs {spec.action_dim}-d actions, task {task} takes {act_dim}-d actions")
    state_dim = int(np.prod(env.observation_space[STATE].shape))
    if STATE in spec and spec.state_dim != state_dim:
        raise ValueError(f"the base expects a {spec.state_dim}-d {STATE}, task {task} gives {state_dim}-d")
    task_spec = getattr(env.unwrapped, "robo_spec", None)
    if task_spec is not None and STATE in spec and STATE in task_spec:
        ours, theirs = spec[STATE].names, task_spec[STATE].names
        if ours and theirs and tuple(ours) != tuple(theirs):
            diff = next(f"{a!r} vs {b!r}" for a, b in zip(ours, theirs) if a != b)
            raise ValueError(f"the base's {STATE} layout differs from task {task}'s ({diff}): "
                             f"it was trained for another task")
    missing = [k for k in spec.image_keys if k not in env.observation_space.spaces]
    if missing:
        raise ValueError(f"the base needs camera inputs {missing} that task {task} does not render")


class ActionScaler:
    """Maps physical actions within Box bounds to [-1, 1] and back."""

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low = np.asarray(low, np.float32)
        self.high = np.asarray(high, np.float32)
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise ValueError("residual RL needs a bounded action space (finite low/high)")
        self.half = (self.high - self.low) / 2
        self.mid = (self.high + self.low) / 2

    def normalize(self, a: np.ndarray) -> np.ndarray:
        return np.clip((a - self.mid) / self.half, -1.0, 1.0).astype(np.float32)

    def unnormalize(self, a: np.ndarray) -> np.ndarray:
        return (np.clip(a, -1.0, 1.0) * self.half + self.mid).astype(np.float32)


def active_action_dims(stats: dict | None, act_dim: int, eps: float = 1e-6) -> np.ndarray:
    """(Da,) float mask: 1 for action dims the base's training data used, 0 for constant ones.

    A dimension the demonstrations never moved (e.g. roll/pitch when every demo kept the gripper
    pointing down) is one the base never corrects; residual noise there integrates into a drift.
    """
    if stats is None or ACTION not in stats:
        return np.ones(act_dim, np.float32)
    lo, hi = np.asarray(stats[ACTION]["min"], np.float32), np.asarray(stats[ACTION]["max"], np.float32)
    return ((hi - lo) > eps).astype(np.float32)


def step_all(envs: list[gym.Env], actions: list[np.ndarray], pool: ThreadPoolExecutor | None = None) -> list[tuple]:
    """`env.step` of each env with its action. Real-time envs (`metadata["realtime"]`, e.g. robo.cells: a
    step waits for the wall clock) are stepped at once on `pool`'s threads, so N robots act in the same
    control period instead of one after another."""
    if pool is None or len(envs) == 1:
        return [env.step(a) for env, a in zip(envs, actions)]
    return list(pool.map(lambda ea: ea[0].step(ea[1]), zip(envs, actions)))


def step_pool(envs: list[gym.Env]) -> ThreadPoolExecutor | None:
    """A thread per env when the envs are real-time and several (see `step_all`), else None."""
    if len(envs) > 1 and envs[0].metadata.get("realtime", False):
        return ThreadPoolExecutor(max_workers=len(envs), thread_name_prefix="env-step")
    return None


def _numeric(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def base_executor(base: Any | None, n_envs: int, n_action_steps: int | None, seed: int, mode: str = "sync",
                  control_hz: float = 10.0) -> ChunkExecutor | None:
    """The executor that runs a frozen base open loop (None without a base): batched sync for N envs,
    or `mode="async"` for one env stepped in real time (a robot, a remote policy)."""
    if base is None:
        return None
    if mode == "async":
        return ChunkExecutor(base, n_action_steps or None, mode="async", control_hz=control_hz, seed=seed)
    return ChunkExecutor(base, n_action_steps or None, n_envs=n_envs, seed=seed)


@dataclass
class VecStep:
    """Result of one vectorised step. `next_*` are the true successors (final obs for ended envs)."""

    next_obs: np.ndarray
    next_base: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    success: np.ndarray
    obs: np.ndarray  # what to act on next (reset observation where an episode ended)
    base: np.ndarray
    episode_lengths: list[int]
    episode_successes: list[bool]
    valid: np.ndarray  # (N,) False where the step was dropped (non-finite observation or reward)
    next_raw: list[dict[str, np.ndarray]] | None = None  # raw dicts of next_obs (before any reset)


class ResidualVecEnv:
    """N synchronous envs + a frozen base. With `base=None` the base action is zero (RL from scratch)."""

    def __init__(
        self,
        task: str,
        base: Any | None,
        n_envs: int = 1,
        seed: int = 0,
        stats: dict | None = None,
        n_action_steps: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
        env_fn: Callable[[int], gym.Env] | None = None,
        executor_mode: str = "sync",
    ):
        # env_fn(i) builds env i when the envs are not a Gymnasium id (e.g. a cell: robo.cells.cell_env_fn)
        self.envs = [env_fn(i) if env_fn is not None else make_env(task, **(env_kwargs or {})) for i in range(n_envs)]
        if base is not None:
            check_base_fits_task(base, self.envs[0], task)
        space = self.envs[0].action_space
        self.scaler = ActionScaler(space.low, space.high)
        state_dim = int(np.prod(self.envs[0].observation_space[STATE].shape))
        self.normalizer_stats = stats if stats is not None else getattr(base, "stats", None)
        self.normalizer = StateNormalizer(self.normalizer_stats, STATE, state_dim)
        hz = float(self.envs[0].metadata.get("render_fps", 10))
        self.base_runner = base_executor(base, n_envs, n_action_steps, seed, executor_mode, hz)
        self.residual_mask = active_action_dims(getattr(base, "stats", None), int(np.prod(space.shape)))
        self.n_envs = n_envs
        self.obs_dim = state_dim
        self.act_dim = int(np.prod(space.shape))
        self.seed = seed
        self._episode = 0
        self._raw: list[dict[str, np.ndarray]] = [{} for _ in range(n_envs)]
        self._len = np.zeros(n_envs, np.int64)
        self.dropped_steps = 0
        self._pool = step_pool(self.envs)

    # -------------------------------------------------------------------------------- helpers
    def _features(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        return self.normalizer(np.asarray(raw[STATE], np.float32))

    def _base(self, raws: list[dict[str, np.ndarray]], envs: list[int]) -> np.ndarray:
        if self.base_runner is None:
            return np.zeros((len(envs), self.act_dim), np.float32)
        return self.scaler.normalize(self.base_runner.act_batch(raws, envs))

    def _reset_env(self, i: int) -> dict[str, np.ndarray]:
        episode_seed = self.seed * 100_003 + self._episode
        raw, _ = self.envs[i].reset(seed=episode_seed)
        self._episode += 1
        if self.base_runner is not None:
            self.base_runner.reset(seed=episode_seed, env=i)
        self._len[i] = 0
        return raw

    # -------------------------------------------------------------------------------- API
    @property
    def raw(self) -> list[dict[str, np.ndarray]]:
        """The raw observations (the task's dict) of the step `obs` / `base` belong to, per env."""
        return self._raw

    def reset(self) -> tuple[np.ndarray, np.ndarray]:
        self._raw = [self._reset_env(i) for i in range(self.n_envs)]
        obs = np.stack([self._features(r) for r in self._raw])
        return obs, self._base(self._raw, list(range(self.n_envs)))

    def step(self, action_norm: np.ndarray) -> VecStep:
        """Step every env with a normalised combined action (N, Da) in [-1, 1]."""
        n = self.n_envs
        next_raw: list[dict[str, np.ndarray]] = []
        reward = np.zeros(n, np.float32)
        term = np.zeros(n, bool)
        trunc = np.zeros(n, bool)
        success = np.zeros(n, bool)
        valid = np.ones(n, bool)
        results = step_all(self.envs, [self.scaler.unnormalize(action_norm[i]) for i in range(n)], self._pool)
        for i, (raw, r, te, tr, info) in enumerate(results):
            if not (np.isfinite(r) and all(np.all(np.isfinite(v)) for v in raw.values() if _numeric(v))):
                valid[i] = False  # dropped: keep the last good observation, end the episode below
                raw, r, te, tr, info = self._raw[i], 0.0, False, True, {}
                self.dropped_steps += 1
            next_raw.append(raw)
            reward[i], term[i], trunc[i] = r, te, tr
            success[i] = bool(info.get("success", False))
        self._len += 1
        next_obs = np.stack([self._features(r) for r in next_raw])
        # The base action at the true next state: continues the open-loop chunk (needed to bootstrap
        # truncated windows; a terminated transition has discount 0, so its value is irrelevant).
        live = [i for i in range(n) if not term[i] and valid[i]]
        next_base = np.zeros((n, self.act_dim), np.float32)
        if live:
            next_base[live] = self._base([next_raw[i] for i in live], live)
        obs, base = next_obs.copy(), next_base.copy()
        final_raw = list(next_raw)
        ended = [i for i in range(n) if term[i] or trunc[i]]
        lengths = [int(self._len[i]) for i in ended if valid[i]]
        successes = [bool(success[i]) for i in ended if valid[i]]
        for i in ended:
            next_raw[i] = self._reset_env(i)
            obs[i] = self._features(next_raw[i])
        if ended:
            base[ended] = self._base([next_raw[i] for i in ended], ended)
        self._raw = next_raw
        return VecStep(next_obs, next_base, reward, term, trunc, success, obs, base, lengths, successes, valid,
                       final_raw)

    def restart(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """End env i's episode now (an operator ended it) and reset it; its new (obs (Do,), base (Da,))."""
        self._raw[i] = self._reset_env(i)
        return self._features(self._raw[i]), self._base([self._raw[i]], [i])[0]

    def replan(self, i: int, raw: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The base re-plans env i from its current (or the given) observation, dropping the chunk it was
        executing (control returns to it after someone else acted); the new (obs (Do,), base (Da,))."""
        if raw is not None:
            self._raw[i] = raw
        if self.base_runner is not None:
            self.base_runner.reset(env=i)
        return self._features(self._raw[i]), self._base([self._raw[i]], [i])[0]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # steps in flight end before their envs close
        for env in self.envs:
            env.close()
