"""What the actor/learner processes need from an RL algorithm, and a minimal one ("reach").

The process plumbing (`robo.runtime.actor`, `robo.runtime.learner`) knows nothing about networks. An
algorithm is a module exposing two factories::

    make_learner(config_path: str | None, run_dir: Path, seed: int) -> LearnerAlgo
    make_actor(config_path: str | None, actor_id: int, seed: int) -> ActorAlgo

named on the command line as `--algo package.module` (or an alias in `ALGOS`). The learner side:

    algo.add(rows)            # rows: {key: (N, ...)} transitions (+ "policy_version" (N,) int64)
    algo.ready() -> bool      # enough data to update
    algo.update() -> metrics  # one gradient update
    algo.actor_state() -> {name: array}   # what actors need to act (weights), msgpack-free arrays
    algo.state_dict() / algo.load_state_dict(sd)   # everything else to resume (not the replay)

The actor side:

    algo.load_actor_state(arrays)         # weights from the learner
    algo.run_episode() -> (rows, info)    # rows {key: (N, ...)}, info {"success": bool, "return": float}

`ReachAlgo` below is the minimal algorithm used by tests and as a smoke run: a point must reach a
goal in 10 steps; the policy is linear with Gaussian exploration that shrinks as training goes on;
the learner regresses actions of successful episodes onto observations (success-filtered behaviour
cloning). Success rises from ~15% to ~90% within a few hundred episodes.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["ALGOS", "ActorAlgo", "LearnerAlgo", "load_algo", "ReachActor", "ReachLearner"]

ALGOS = {
    "reach": "robo.runtime.algo",
    "residual": "robo.runtime.residual_algo",
}
"""Short names for `--algo`; anything else is a module path."""


class LearnerAlgo(Protocol):
    def add(self, rows: dict[str, np.ndarray]) -> None: ...
    def ready(self) -> bool: ...
    def update(self) -> dict[str, float]: ...
    def actor_state(self) -> dict[str, Any]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, sd: dict[str, Any]) -> None: ...


class ActorAlgo(Protocol):
    def load_actor_state(self, arrays: dict[str, np.ndarray]) -> None: ...
    def run_episode(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...


def load_algo(name: str) -> Any:
    """The algorithm module for `--algo` (alias or dotted module path)."""
    module = ALGOS.get(name, name)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"--algo {name}: cannot import {module} ({e})") from None
    for fn in ("make_learner", "make_actor"):
        if not hasattr(mod, fn):
            raise ValueError(f"--algo {name}: module {module} has no {fn}()")
    return mod


# ========================================================================================= reach
OBS_DIM, ACT_DIM, MAX_STEPS, STEP_SIZE, TOLERANCE = 4, 2, 10, 0.3, 0.2


class ReachActor:
    """Point-reach episodes with a linear policy a = W o + b + sigma * noise, clipped to [-1, 1]."""

    def __init__(self, seed: int = 0, step_time_s: float = 0.002) -> None:
        self.rng = np.random.default_rng(seed)
        self.step_time_s = step_time_s  # a simulated control period, so actors run at a robot's pace
        self.W = np.zeros((ACT_DIM, OBS_DIM), np.float32)
        self.b = np.zeros(ACT_DIM, np.float32)
        self.sigma = 0.6

    def load_actor_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.W = np.array(arrays["W"], np.float32)
        self.b = np.array(arrays["b"], np.float32)
        self.sigma = float(arrays["sigma"])

    def run_episode(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        p = self.rng.uniform(-1, 1, 2)
        g = self.rng.uniform(-1, 1, 2)
        obs, act, rew, done = [], [], [], []
        success = False
        for _ in range(MAX_STEPS):
            o = np.concatenate([p, g]).astype(np.float32)
            a = np.clip(self.W @ o + self.b + self.sigma * self.rng.normal(size=ACT_DIM), -1, 1).astype(np.float32)
            p = p + STEP_SIZE * a
            if self.step_time_s:
                time.sleep(self.step_time_s)
            success = bool(np.linalg.norm(p - g) < TOLERANCE)
            obs.append(o)
            act.append(a)
            rew.append(float(success))
            done.append(success)
            if success:
                break
        n = len(obs)
        rows = {
            "obs": np.stack(obs),
            "action": np.stack(act),
            "reward": np.asarray(rew, np.float32),
            "done": np.asarray(done, np.bool_),
            "episode_success": np.full(n, success, np.bool_),
        }
        return rows, {"success": success, "return": float(sum(rew)), "length": n}


class ReachLearner:
    """Success-filtered regression of actions on observations (SGD, batch 64)."""

    def __init__(self, seed: int = 0, lr: float = 0.1, batch_size: int = 64, capacity: int = 100_000) -> None:
        self.rng = np.random.default_rng(seed)
        self.lr, self.batch_size, self.capacity = lr, batch_size, capacity
        self.W = np.zeros((ACT_DIM, OBS_DIM), np.float32)
        self.b = np.zeros(ACT_DIM, np.float32)
        self.n_updates = 0
        self.obs = np.zeros((0, OBS_DIM), np.float32)
        self.act = np.zeros((0, ACT_DIM), np.float32)
        self.n_rows = 0

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self.n_rows += len(rows["obs"])
        keep = np.asarray(rows["episode_success"], bool)
        if keep.any():
            self.obs = np.concatenate([self.obs, rows["obs"][keep]])[-self.capacity :]
            self.act = np.concatenate([self.act, rows["action"][keep]])[-self.capacity :]

    def ready(self) -> bool:
        return len(self.obs) >= 64

    def sigma(self) -> float:
        """Exploration noise: 0.6 shrinking to 0.2 as updates accumulate."""
        return max(0.2, 0.6 * 0.98 ** (self.n_updates / 100))

    def update(self) -> dict[str, float]:
        idx = self.rng.integers(0, len(self.obs), self.batch_size)
        o, a = self.obs[idx], self.act[idx]
        err = o @ self.W.T + self.b - a
        self.W -= self.lr * (err.T @ o) / len(idx)
        self.b -= self.lr * err.mean(0)
        self.n_updates += 1
        return {"loss": float((err**2).mean())}

    def actor_state(self) -> dict[str, Any]:
        return {"W": self.W, "b": self.b, "sigma": np.float32(self.sigma())}

    def state_dict(self) -> dict[str, Any]:
        return {"W": self.W.copy(), "b": self.b.copy(), "n_updates": self.n_updates}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.W = np.array(sd["W"], np.float32)
        self.b = np.array(sd["b"], np.float32)
        self.n_updates = int(sd["n_updates"])


def make_learner(config_path: str | None, run_dir: Path, seed: int) -> ReachLearner:
    return ReachLearner(seed)


def make_actor(config_path: str | None, actor_id: int, seed: int) -> ReachActor:
    return ReachActor(seed * 1000 + actor_id)
