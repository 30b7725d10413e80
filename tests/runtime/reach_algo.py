"""A minimal algorithm on a minimal task, for the runtime tests: `--algo reach_algo` (a module path).

Task `RoboTest/Reach-v0`: a point must reach a goal in 10 steps (observation [point, goal], action a
2-d step in [-1, 1], success within 0.2; each step sleeps 2 ms, a robot's pace). Policy: linear with
Gaussian exploration that shrinks as updates accumulate; the learner regresses the actions of
successful episodes onto their observations (success-filtered behaviour cloning). Success rises
from ~15% to ~90% within a few hundred episodes, in seconds, without MuJoCo or torch networks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robo.learn.algo import Algorithm, EnvInfo, Explorer, Learner, RLConfig, UpdateSchedule, float_schema

OBS_DIM, ACT_DIM, MAX_STEPS, STEP_SIZE, TOLERANCE = 4, 2, 10, 0.3, 0.2
TASK = "RoboTest/Reach-v0"


class ReachEnv(gym.Env):
    metadata = {"render_fps": 10, "render_modes": []}

    def __init__(self, step_time_s: float = 0.002) -> None:
        self.observation_space = gym.spaces.Dict(
            {"observation.state": gym.spaces.Box(-3, 3, (OBS_DIM,), np.float32)})
        self.action_space = gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32)
        self.step_time_s = step_time_s
        self.p = self.g = np.zeros(2)
        self.t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation.state": np.concatenate([self.p, self.g]).astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.p, self.g = self.np_random.uniform(-1, 1, 2), self.np_random.uniform(-1, 1, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.p = self.p + STEP_SIZE * np.clip(action, -1, 1)
        self.t += 1
        if self.step_time_s:
            time.sleep(self.step_time_s)
        success = bool(np.linalg.norm(self.p - self.g) < TOLERANCE)
        return self._obs(), float(success), success, self.t >= MAX_STEPS and not success, {"success": success}


if TASK not in gym.registry:
    gym.register(TASK, entry_point=ReachEnv)
    gym.register("RoboTest/ReachFast-v0", entry_point=ReachEnv, kwargs={"step_time_s": 0.0})  # contract tests


@dataclass
class ReachConfig(RLConfig):
    """The reach algorithm's knobs (defaults sized for tests)."""

    task: str = TASK
    """The reach task."""
    base: str = "none"
    """No base."""
    total_env_steps: int = 5000
    """Stored rows."""
    utd: float = 1.0
    """Updates per stored row."""
    lr: float = 0.1
    """SGD step."""
    batch_size: int = 64
    """Rows per update."""
    eval_every: int = 2500
    """Rows between evaluations."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    final_eval_episodes: int = 20
    """Episodes of the final report."""
    final_videos: int = 0
    """No video (the task renders nothing)."""
    checkpoint_every: int = 1000
    """Rows between checkpoints."""
    max_actor_lead: int = 0
    """Actors never run ahead of the update schedule."""
    mask_unused_dims: bool = False
    """No base stats to mask with."""


def _policy(W: np.ndarray, b: np.ndarray, obs: np.ndarray) -> np.ndarray:
    return obs @ W.T + b


class ReachExplorer(Explorer):
    def __init__(self, cfg: ReachConfig, env: EnvInfo, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.W, self.b, self.sigma = np.zeros((ACT_DIM, OBS_DIM), np.float32), np.zeros(ACT_DIM, np.float32), 0.6
        self.episodes: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.W, self.b, self.sigma = np.array(weights["W"]), np.array(weights["b"]), float(weights["sigma"])

    def act(self, obs, base):
        noise = self.sigma * self.rng.normal(size=(len(obs), ACT_DIM))
        return np.clip(_policy(self.W, self.b, obs) + noise, -1, 1).astype(np.float32), {}

    def observe(self, obs, base, action, extras, step):
        out = []
        for i in range(len(obs)):
            ep = self.episodes.setdefault(i, [])
            ep.append((obs[i], action[i]))
            if step.terminated[i] or step.truncated[i]:
                ok = np.float32(bool(step.terminated[i]))
                out.append({"obs": np.stack([o for o, _ in ep]), "action": np.stack([a for _, a in ep]),
                            "episode_success": np.full(len(ep), ok, np.float32)})
                self.episodes[i] = []
        return {k: np.concatenate([r[k] for r in out]) for k in out[0]} if out else None


class ReachLearner(Learner):
    def __init__(self, setup: Any) -> None:
        cfg: ReachConfig = setup.cfg
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.W, self.b = np.zeros((ACT_DIM, OBS_DIM), np.float32), np.zeros(ACT_DIM, np.float32)
        self.row_schema = float_schema(obs=OBS_DIM, action=ACT_DIM, episode_success=0)
        self.schedule = UpdateSchedule(ratio=cfg.utd)
        self.obs, self.act = np.zeros((0, OBS_DIM), np.float32), np.zeros((0, ACT_DIM), np.float32)
        self.rows_added = 0
        self._n_updates = 0

    @property
    def n_updates(self) -> int:
        return self._n_updates

    def add(self, rows):
        self.rows_added += len(rows["obs"])
        keep = rows["episode_success"] > 0
        self.obs = np.concatenate([self.obs, rows["obs"][keep]])[-100_000:]
        self.act = np.concatenate([self.act, rows["action"][keep]])[-100_000:]

    def updates_owed(self) -> int:
        return 0 if len(self.obs) < 64 else max(0, self.schedule.due(self.rows_added) - self._n_updates)

    def rows_ahead(self) -> int:
        return int(self.rows_added - self.schedule.rows_covered(self._n_updates))

    def sigma(self) -> float:
        """Exploration noise: 0.6 shrinking to 0.2 as updates accumulate."""
        return max(0.2, 0.6 * 0.98 ** (self._n_updates / 100))

    def update(self):
        idx = self.rng.integers(0, len(self.obs), self.cfg.batch_size)
        o, a = self.obs[idx], self.act[idx]
        err = _policy(self.W, self.b, o) - a
        self.W -= self.cfg.lr * (err.T @ o) / len(idx)
        self.b -= self.cfg.lr * err.mean(0)
        self._n_updates += 1
        return {"loss": float((err**2).mean())}

    def weights(self):
        return {"W": self.W.copy(), "b": self.b.copy(), "sigma": np.float32(self.sigma())}

    def eval_policy(self):
        W, b = self.W.copy(), self.b.copy()
        return None, lambda obs, base: _policy(W, b, obs)

    def save_policy(self, run_dir: Path) -> None:
        np.savez(Path(run_dir) / "reach.npz", W=self.W, b=self.b)

    def state_dict(self):
        return {"W": self.W.copy(), "b": self.b.copy(), "n_updates": self._n_updates}

    def load_state_dict(self, sd):
        self.W, self.b, self._n_updates = np.array(sd["W"]), np.array(sd["b"]), int(sd["n_updates"])


def load_reach(run_dir: Path):
    z = np.load(Path(run_dir) / "reach.npz")
    W, b = z["W"], z["b"]
    return lambda obs, base: _policy(W, b, obs)


ALGORITHM = Algorithm(name="reach_algo", config_class=ReachConfig, explorer=ReachExplorer, learner=ReachLearner,
                      load_policy=load_reach, description="test algorithm: success-filtered BC on a point reach")
