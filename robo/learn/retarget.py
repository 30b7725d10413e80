"""Cross-embodiment demos (after TrajBooster): a one-arm Panda dataset becomes G1BoxLift-v0 episodes.

The end-effector trajectory relative to the object is the morphology-agnostic part of a demonstration.
For each source episode:

1. the source TCP path relative to the object's starting position, `tcp_t - obj_0`, and its gripper
   command (`action[-1] > 0`: closed) are resampled from the source's rate to the target task's (10 Hz
   Panda -> 20 Hz G1);
2. that path is laid on the target's object: the midpoint of the two hands follows `box_0 + (tcp_t - obj_0)`;
   an open gripper holds the hands apart beside the box (box width + 2 x (hand radius + clearance)), a
   closed one brings them in against its sides and then squeezes (the bimanual "gripper");
3. the target task (seeded like any episode) is stepped with actions that track those hand targets
   within its action bounds, and its observations and actions are recorded. A source episode ends the
   moment its own success test passes (the cube 10 cm up); so that the target's test can pass too, the
   path's last motion (its mean velocity over the last 0.25 s) is continued for up to `extend_s`, then held.

So the retargeted episodes are the G1's own observations and actions, executed in its simulator; only
the intent (where to go relative to the object, when to hold it) comes from the other robot. By default
only the episodes the G1 completes are kept (`keep="success"`).

    summary = retarget_dataset("data/panda_lift", "G1BoxLift-v0", "data/g1_from_panda")
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from robo.spec import ACTION, STATE

# the source must name its TCP position and one object position in observation.state
TCP_NAMES = ("tcp_x", "tcp_y", "tcp_z")
OBJECT_PREFIXES = ("cube", "peg", "cube_a", "object")


def source_paths(dataset: Any, episode: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tcp path relative to the object's start (T, 3) m, gripper closed (T,) bool, object start (3,) m)."""
    names = list(dataset.spec[STATE].names or ())
    missing = [n for n in TCP_NAMES if n not in names]
    if missing:
        raise ValueError(f"{dataset.root}: observation.state has no {missing[0]!r}: not a one-arm TCP dataset")
    prefix = next((p for p in OBJECT_PREFIXES if f"{p}_x" in names), None)
    if prefix is None:
        raise ValueError(f"{dataset.root}: observation.state names no object position ({', '.join(OBJECT_PREFIXES)})")
    ep = dataset.episode(episode)
    state, action = np.asarray(ep[STATE], np.float64), np.asarray(ep[ACTION], np.float64)
    tcp = state[:, [names.index(n) for n in TCP_NAMES]]
    obj0 = state[0, [names.index(f"{prefix}_{a}") for a in "xyz"]]
    return tcp - obj0, action[:, -1] > 0.0, obj0


def resample(path: np.ndarray, closed: np.ndarray, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear resampling of the path; the gripper state of the latest source step at or before each time."""
    t_in = np.arange(len(path)) / fps_in
    t_out = np.arange(int(np.floor(t_in[-1] * fps_out)) + 1) / fps_out
    out = np.stack([np.interp(t_out, t_in, path[:, k]) for k in range(3)], axis=1)
    idx = np.clip(np.searchsorted(t_in, t_out, side="right") - 1, 0, len(path) - 1)
    return out, closed[idx]


class BimanualTracker:
    """G1BoxLift-v0 actions that put the hands' midpoint on a path, apart (open) or pressing (closed)."""

    def __init__(self, env: Any, max_step: float = 0.016, clearance: float = 0.045, hand_radius: float = 0.035):
        from robo.sim.tasks.g1_box_lift_v0 import BOX_HALF

        self.env, self.u = env, env.unwrapped
        self.max_step = max_step
        self.closed_gap = 2 * (BOX_HALF[1] + hand_radius)  # hands against the box sides
        self.open_gap = self.closed_gap + 2 * clearance
        self.gap = self.open_gap

    def act(self, midpoint: np.ndarray, closed: bool) -> np.ndarray:
        goal = self.closed_gap if closed else self.open_gap
        self.gap = float(np.clip(goal, self.gap - 2 * self.max_step, self.gap + 2 * self.max_step))
        half = np.array([0.0, self.gap / 2, 0.0])
        targets = np.stack([midpoint + half, midpoint - half])
        a = np.zeros(7)
        for k in range(2):
            d = targets[k] - self.u.target_pos[k]
            n = float(np.linalg.norm(d))
            a[3 * k:3 * k + 3] = d * (self.max_step / n) if n > self.max_step else d
        a[6] = 1.0 if closed and abs(self.gap - self.closed_gap) < 1e-6 else -1.0
        space = self.env.action_space
        return np.clip(a, space.low, space.high).astype(np.float32)


def extend(path: np.ndarray, closed: np.ndarray, fps: float, extend_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The path continued at its mean velocity of the last 0.25 s for `extend_s` s (gripper as at the end)."""
    k = max(1, min(len(path) - 1, int(round(0.25 * fps))))
    if k < 1 or len(path) < 2:
        return path, closed
    v = (path[-1] - path[-1 - k]) / (k / fps)
    n = int(round(extend_s * fps))
    tail = path[-1] + v * (np.arange(1, n + 1)[:, None] / fps)
    return np.concatenate([path, tail]), np.concatenate([closed, np.full(n, closed[-1])])


def retarget_dataset(source: str | Path, task: str, out: str | Path, *, seed: int = 50_000, keep: str = "success",
                     max_episodes: int | None = None, extend_s: float = 0.5) -> dict[str, Any]:
    """Retarget every episode of the one-arm dataset `source` onto `task` (G1BoxLift-v0) into `out`.

    Target episode k resets with seed `seed + k` (keep it apart from the seeds you evaluate on). The path
    is followed (its last motion continued for `extend_s`), then its last point held until the task ends.
    Returns counts.
    """
    from robo.data import Dataset, DatasetWriter
    from robo.learn.residual_env import make_env

    if keep not in ("success", "all"):
        raise ValueError(f"keep={keep!r} must be 'success' or 'all'")
    src = Dataset(source)
    env = make_env(task)
    u = env.unwrapped
    if type(u).__name__ != "G1BoxLiftV0":
        raise ValueError(f"retarget targets G1BoxLift-v0 (two hands around a box), not {task}")
    fps_out = float(env.metadata.get("render_fps", 20))
    writer = DatasetWriter(out, u.robo_spec, fps=int(fps_out), task=u.task_description,
                           robot_type=getattr(u, "robot_type", "unitree_g1"), env_id=task)
    n_src = src.num_episodes if max_episodes is None else min(max_episodes, src.num_episodes)
    saved = successes = 0
    t0 = time.monotonic()
    try:
        for k in range(n_src):
            rel, closed, _ = source_paths(src, k)
            rel, closed = extend(*resample(rel, closed, float(src.fps), fps_out), fps_out, extend_s)
            obs, _ = env.reset(seed=seed + k)
            box0 = u.box_pos.copy()
            tracker = BimanualTracker(env)
            limit = env.spec.max_episode_steps
            success = False
            for t in range(limit):
                i = min(t, len(rel) - 1)
                action = tracker.act(box0 + rel[i], bool(closed[i]))
                next_obs, reward, terminated, truncated, info = env.step(action)
                writer.add_frame({**obs, ACTION: action, "action_source": "scripted", "next.reward": float(reward),
                                  "next.done": bool(terminated or truncated), "capture_timestamp": time.time()})
                obs = next_obs
                if terminated or truncated:
                    success = bool(info.get("success", False))
                    break
            successes += success
            if success or keep == "all":
                writer.save_episode(success=success)
                saved += 1
            else:
                writer.discard_episode()
    finally:
        writer.close()
        env.close()
    summary = {"source": str(source), "source_episodes": n_src, "task": task, "out": str(out), "saved": saved,
               "target_success_rate": successes / max(n_src, 1), "keep": keep, "seed": seed,
               "seconds": round(time.monotonic() - t0, 1)}
    (Path(out) / "meta" / "retarget.json").write_text(json.dumps(summary, indent=2) + "\n")  # provenance
    return summary
