"""Replay buffers for off-policy learners (n-step transitions, online + demo mixing, save/load) and the
on-policy learners' rollout queue (`OnPolicyRollouts`).

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
    human: bool = False  # a person (or the scripted operator) acted this step (robo.hil)


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
            "human": np.float32(first.human),
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


# ==================================================================================== off-policy plumbing
class NStepRows:
    """What an off-policy explorer emits: per-env n-step windows over its steps, as rows {field: (n, ...)}.

    A dropped step (`step.valid[i]` False: non-finite data, the env was reset) closes env i's windows;
    `zero_base` stores a zero base action (an algorithm without a base, e.g. SAC)."""

    def __init__(self, n_step: int, gamma: float, *, zero_base: bool = False) -> None:
        self.n_step, self.gamma, self.zero_base = n_step, gamma, zero_base
        self.accs: dict[int, NStepAccumulator] = {}

    def __call__(self, obs: np.ndarray, base: np.ndarray, action: np.ndarray, step,
                 human: np.ndarray | None = None) -> dict[str, np.ndarray] | None:
        """Rows {FIELDS..., "human"}; `human` (N,) bool marks the envs a person acted in this step (the row
        keeps the executed action: a person's action is never turned into a residual target)."""
        out: list[dict[str, np.ndarray]] = []
        base = np.zeros_like(base) if self.zero_base else base
        next_base = np.zeros_like(step.next_base) if self.zero_base else step.next_base
        for i in range(len(obs)):
            acc = self.accs.setdefault(i, NStepAccumulator(self.n_step, self.gamma))
            if not step.valid[i]:
                out += acc.cut()
                continue
            out += acc.push(Step(obs[i], base[i], action[i], float(step.reward[i]), step.next_obs[i], next_base[i],
                                 bool(step.terminated[i]), bool(step.truncated[i]),
                                 bool(human[i]) if human is not None else False))
        return {k: np.stack([np.asarray(r[k], np.float32) for r in out]) for k in (*FIELDS, "human")} if out else None


class OffPolicyData:
    """An off-policy learner's data: online replay + demo buffer (50/50 batches) and its update schedule,
    `utd` updates per stored row after `learning_starts` (`UpdateSchedule`).

    Rows a person acted (`human` = 1: interventions, HIL-SERL style) go into the online buffer like every
    row, with the executed action, and into the demo buffer too, so the demo half of each batch learns
    from them as from the demonstrations."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, demo: ReplayBuffer | None, *, utd: float,
                 learning_starts: int, batch_size: int, demo_fraction: float, seed: int, device: torch.device) -> None:
        from robo.learn.algo import UpdateSchedule, float_schema

        self.online = ReplayBuffer(capacity, obs_dim, act_dim)
        self.demo = demo
        self.schedule = UpdateSchedule(ratio=float(utd), offset=learning_starts)
        self.row_schema = float_schema(obs=obs_dim, base=act_dim, action=act_dim, reward=0, next_obs=obs_dim,
                                       next_base=act_dim, discount=0, human=0)
        self.capacity = capacity
        self.human_rows = 0
        self.batch_size, self.demo_fraction, self.device = batch_size, demo_fraction, device
        self.learning_starts = learning_starts
        self.rng = np.random.default_rng(seed)
        self.rows_added = 0

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self.online.add_batch(rows)
        self.rows_added += len(rows["obs"])
        human = np.asarray(rows.get("human", np.zeros(len(rows["obs"]))), np.float32) > 0.5
        if human.any():
            if self.demo is None or len(self.demo) + int(human.sum()) > self.demo.capacity:
                self._grow_demo()  # never overwrite a demonstration with an intervention
            self.demo.add_batch({k: np.asarray(v)[human] for k, v in rows.items() if k in FIELDS})
            self.human_rows += int(human.sum())

    def _grow_demo(self) -> None:
        """Room for `capacity` more rows in the demo buffer (the demos sized it to themselves)."""
        old = self.demo
        grown = ReplayBuffer((len(old) if old is not None else 0) + self.capacity, self.online.obs_dim,
                             self.online.act_dim)
        if old is not None and len(old):
            grown.add_batch(old.get((old.ptr - len(old) + np.arange(len(old))) % old.capacity))  # oldest first
        self.demo = grown

    @property
    def learning_started(self) -> bool:
        return self.rows_added >= self.learning_starts

    def updates_owed(self, n_updates: int) -> int:
        if len(self.online) + (len(self.demo) if self.demo is not None else 0) < self.batch_size:
            return 0
        return max(0, self.schedule.due(self.rows_added) - n_updates)

    def rows_ahead(self, n_updates: int) -> int:
        return int(max(0, self.rows_added - self.schedule.rows_covered(n_updates)))

    def batch(self) -> dict[str, torch.Tensor]:
        return sample_mixed(self.online, self.demo, self.batch_size, self.demo_fraction, self.rng, self.device)


class OnPolicyRollouts:
    """An on-policy learner's data: rows queued in arrival order, one update per `batch_rows` of them
    (`UpdateSchedule` with ratio 1 / batch_rows), each row used by exactly one update."""

    def __init__(self, batch_rows: int) -> None:
        from robo.learn.algo import UpdateSchedule

        self.batch_rows = batch_rows
        self.schedule = UpdateSchedule(ratio=1.0 / batch_rows)
        self.pending: list[dict[str, np.ndarray]] = []
        self.rows_added = 0

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self.pending.append(rows)
        self.rows_added += len(rows["obs"])

    def updates_owed(self, n_updates: int) -> int:
        return max(0, self.schedule.due(self.rows_added) - n_updates)

    def rows_ahead(self, n_updates: int) -> int:
        return int(self.rows_added - self.schedule.rows_covered(n_updates))

    def held(self) -> dict[str, np.ndarray] | None:
        """Every queued row, oldest first (None when empty)."""
        if not self.pending:
            return None
        return {k: np.concatenate([p[k] for p in self.pending]) for k in self.pending[0]}

    def take(self) -> dict[str, np.ndarray]:
        """The oldest `batch_rows` rows: the next update's rollout (removed from the queue)."""
        rows = self.held()
        if rows is None:
            raise RuntimeError("no rows queued: an update was asked for before its rollout arrived")
        self._keep({k: v[self.batch_rows :] for k, v in rows.items()})
        return {k: v[: self.batch_rows] for k, v in rows.items()}

    def drop_used(self, n_updates: int) -> None:
        """After a resume: drop the replayed rows that the first `n_updates` updates already used."""
        rows = self.held()
        if rows is not None:
            self._keep({k: v[int(self.schedule.rows_covered(n_updates)) :] for k, v in rows.items()})

    def _keep(self, rows: dict[str, np.ndarray]) -> None:
        self.pending = [rows] if len(rows["obs"]) else []
