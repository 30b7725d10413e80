"""Replay buffers for off-policy learners: n-step transitions, online + demo mixing, save/load.

A transition stores the residual learner's view of a step (all actions in normalised [-1, 1] units):

    obs (Do,)       observation features at t
    base (Da,)      the frozen base policy's action at t
    action (Da,)    the executed (combined, clamped) action at t
    reward          sum_{k<n} gamma^k r_{t+k}            (n-step return, n <= n_step)
    next_obs, next_base   features and base action at t+n
    discount        gamma^n if the episode did not terminate inside the window, else 0

`NStepAccumulator` turns a per-step stream of one environment into such transitions; the buffer
never sees partial windows, so sampling needs no episode bookkeeping. Truncation (time limit) is not
termination: the window is cut and bootstrapped from the last observed state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

FIELDS = ("obs", "base", "action", "reward", "next_obs", "next_base", "discount")


@dataclass
class Step:
    """One environment step as seen by the learner (normalised actions)."""

    obs: np.ndarray
    base: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    next_base: np.ndarray
    terminated: bool
    truncated: bool


class NStepAccumulator:
    """Collects consecutive steps of ONE environment and emits n-step transitions."""

    def __init__(self, n_step: int, gamma: float):
        if n_step < 1:
            raise ValueError(f"n_step={n_step} must be >= 1")
        self.n_step = n_step
        self.gamma = gamma
        self._window: deque[Step] = deque()

    def _emit(self, steps: list[Step]) -> dict[str, np.ndarray]:
        first, last = steps[0], steps[-1]
        ret = sum(self.gamma**k * s.reward for k, s in enumerate(steps))
        discount = 0.0 if last.terminated else self.gamma ** len(steps)
        return {
            "obs": first.obs,
            "base": first.base,
            "action": first.action,
            "reward": np.float32(ret),
            "next_obs": last.next_obs,
            "next_base": last.next_base,
            "discount": np.float32(discount),
        }

    def push(self, step: Step) -> list[dict[str, np.ndarray]]:
        """Add one step; returns the transitions that became complete (0, 1, or the flush at episode end)."""
        self._window.append(step)
        if step.terminated or step.truncated:
            return self.cut()
        out = []
        if len(self._window) == self.n_step:
            out.append(self._emit(list(self._window)))
            self._window.popleft()
        return out

    def cut(self) -> list[dict[str, np.ndarray]]:
        """Emit every pending window: at an episode's end, or where its data stops after the last pushed
        step (the next one was corrupt; each window then bootstraps from its own last step)."""
        out = []
        while self._window:
            out.append(self._emit(list(self._window)))
            self._window.popleft()
        return out

    def clear(self) -> None:
        self._window.clear()


class ReplayBuffer:
    """Fixed-capacity ring buffer of n-step transitions (numpy storage, torch sampling)."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.capacity = capacity
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "base": np.zeros((capacity, act_dim), np.float32),
            "action": np.zeros((capacity, act_dim), np.float32),
            "reward": np.zeros((capacity,), np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "next_base": np.zeros((capacity, act_dim), np.float32),
            "discount": np.zeros((capacity,), np.float32),
        }
        self.size = 0
        self.ptr = 0
        self.total_added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, tr: dict[str, np.ndarray]) -> None:
        """Add one transition {field: (...)}."""
        self.add_batch({k: np.asarray(tr[k], np.float32)[None] for k in FIELDS})

    def add_batch(self, rows: dict[str, np.ndarray]) -> None:
        """Add transitions {field: (n, ...)} in order (a full ring overwrites its oldest entries)."""
        values = {k: np.asarray(rows[k], np.float32) for k in FIELDS}
        for k, v in values.items():
            if not np.all(np.isfinite(v)):
                raise ValueError(f"replay: transition field '{k}' contains NaN or inf; not stored")
        n = len(values["obs"])
        for start in range(0, n, self.capacity):  # more rows than capacity: only the last fit
            part = slice(start, min(n, start + self.capacity))
            m = part.stop - part.start
            idx = (self.ptr + np.arange(m)) % self.capacity
            for k, v in values.items():
                self.data[k][idx] = v[part]
            self.ptr = int((self.ptr + m) % self.capacity)
            self.size = min(self.size + m, self.capacity)
            self.total_added += m

    def sample_idx(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.size == 0:
            raise ValueError("replay: cannot sample from an empty buffer")
        return rng.integers(0, self.size, size=n)

    def get(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self.data.items()}


def sample_mixed(
    online: ReplayBuffer,
    demo: ReplayBuffer | None,
    batch_size: int,
    demo_fraction: float,
    rng: np.random.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """RLPD-style symmetric sampling: `demo_fraction` of the batch from demos, the rest online.

    Falls back to whichever buffer is non-empty.
    """
    n_demo = int(round(batch_size * demo_fraction)) if demo is not None and len(demo) > 0 else 0
    if len(online) == 0:
        n_demo = batch_size
    parts = []
    if n_demo > 0:
        parts.append(demo.get(demo.sample_idx(n_demo, rng)))  # type: ignore[union-attr]
    if batch_size - n_demo > 0:
        parts.append(online.get(online.sample_idx(batch_size - n_demo, rng)))
    batch = {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
