"""Scripted demonstrations: run a task's scripted expert and record episodes into a robo dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from robo.learn.common import ProgressLine
from robo.learn.residual_env import make_env
from robo.spec import ACTION

SEEDS_FILE = "meta/robo_seeds.json"
"""Reset seeds of every scripted collection into a dataset ([[first, last], ...]), so appending never
re-records the same episodes (LeRobot ignores files of meta/ it does not know)."""


def used_seeds(out: str | Path) -> list[list[int]]:
    path = Path(out) / SEEDS_FILE
    if not path.is_file():
        return []
    import json

    try:
        ranges = json.loads(path.read_text())
        return [[int(a), int(b)] for a, b in ranges]
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: unreadable ({' '.join(str(e).split())})") from None


def next_free_seed(out: str | Path, seed: int | None) -> int:
    """The first reset seed of a collection into `out`: `seed` if given and unused, else after every seed
    an earlier collection used (0 for a new dataset). A given seed another collection used is refused."""
    ranges = used_seeds(out)
    after = max((b + 1 for _, b in ranges), default=0)
    if seed is None:
        return after
    for a, b in ranges:
        if a <= seed <= b:
            raise ValueError(f"{out}: seeds {a}..{b} are recorded already; pass --seed {after} (or leave --seed out "
                             f"to continue after them)")
    return seed


def collect_scripted(
    task: str,
    out: str | Path,
    episodes: int,
    noise: float = 0.0,
    seed: int = 0,
    cameras: tuple[str, ...] = (),
    image_size: int = 64,
    keep_failures: bool = False,
    max_attempts_factor: int = 4,
) -> dict[str, Any]:
    """Record `episodes` expert episodes (successful ones only unless `keep_failures`).

    Episode k of the attempt sequence uses reset seed `seed + k`, so a collection is reproducible.
    Each episode becomes durable on its own (the dataset writer renames it into place when complete).
    """
    from robo.data import DatasetWriter
    from robo.sim.experts import make_expert

    env_kwargs: dict[str, Any] = {"cameras": tuple(cameras), "image_size": image_size} if cameras else {}
    env = make_env(task, **env_kwargs)
    spec = env.unwrapped.robo_spec
    writer = DatasetWriter(out, spec, fps=int(env.metadata.get("render_fps", 10)),
                           task=env.unwrapped.task_description,
                           robot_type=getattr(env.unwrapped, "robot_type", "panda"), env_id=task)
    expert = make_expert(env, noise=noise, seed=seed)
    saved = attempts = successes = 0
    progress = ProgressLine(episodes, f"collect {task}")
    t0 = time.monotonic()
    try:
        while saved < episodes and attempts < episodes * max_attempts_factor:
            obs, _ = env.reset(seed=seed + attempts)
            expert.reset()
            attempts += 1
            success = False
            while True:
                action = np.asarray(expert.act(obs), np.float32)
                t_capture = time.time()
                next_obs, reward, terminated, truncated, info = env.step(action)
                frame = {k: v for k, v in obs.items()}
                frame.update({ACTION: action, "action_source": "scripted", "next.reward": float(reward),
                              "next.done": bool(terminated or truncated), "capture_timestamp": t_capture})
                writer.add_frame(frame)
                obs = next_obs
                if terminated or truncated:
                    success = bool(info.get("success", False))
                    break
            successes += success
            if success or keep_failures:
                writer.save_episode(success=success)
                saved += 1
            else:
                writer.discard_episode()
            progress.update(saved, {"attempts": attempts, "expert_success": successes / attempts,
                                    "eps/s": attempts / max(1e-6, time.monotonic() - t0)}, force=saved == episodes)
    finally:
        try:
            writer.close()
        finally:
            env.close()
            progress.close()
            if attempts:  # even after an interruption: the episodes it saved used these seeds
                from robo.data.atomic import atomic_write_json

                atomic_write_json(Path(out) / SEEDS_FILE, used_seeds(out) + [[seed, seed + attempts - 1]])
    if saved < episodes:
        raise RuntimeError(f"expert succeeded on only {successes}/{attempts} attempts at noise={noise}; "
                           f"recorded {saved}/{episodes} episodes in {out}")
    return {"episodes": saved, "attempts": attempts, "expert_success_rate": successes / attempts,
            "out": str(out), "noise": noise}


def demo_transitions(dataset: Any, base: Any | None, view: Any, n_step: int, gamma: float,
                     n_action_steps: int | None = None, seed: int = 0) -> Any:
    """A demo dataset as the residual learner sees it: n-step transitions (robo.learn.replay) with the
    demos' own actions, normalised, and the base actions recomputed by running the frozen base open
    loop over each demo's observations (zero without a base).

    `view` is a `ResidualVecEnv` of the task: its action scaler and state normaliser are used."""
    from robo.learn.replay import NStepAccumulator, ReplayBuffer, Step
    from robo.learn.residual_env import base_executor
    from robo.spec import STATE

    runner = base_executor(base, 1, n_action_steps, seed)
    buf = ReplayBuffer(max(1, dataset.num_frames), view.obs_dim, view.act_dim)
    for ep in range(dataset.num_episodes):
        data = dataset.episode(ep)
        n = len(data[ACTION])
        obs = view.normalizer(np.asarray(data[STATE], np.float32))
        if runner is not None:
            runner.reset(env=0)
            raw = [{k: data[k][t] for k in data if k.startswith("observation.")} for t in range(n)]
            base_act = view.scaler.normalize(np.concatenate([runner.act_batch([r]) for r in raw]))
        else:
            base_act = np.zeros((n, view.act_dim), np.float32)
        act = view.scaler.normalize(np.asarray(data[ACTION], np.float32))
        reward = np.asarray(data.get("next.reward", np.zeros(n)), np.float32)
        done = np.asarray(data.get("next.done", np.zeros(n, bool)), bool)
        success_end = bool(reward[-1] > 0)
        acc = NStepAccumulator(n_step, gamma)
        for t in range(n):
            last = t == n - 1
            nxt = min(t + 1, n - 1)
            step = Step(obs[t], base_act[t], act[t], float(reward[t]), obs[nxt], base_act[nxt],
                        terminated=bool(last and success_end) or bool(done[t] and reward[t] > 0),
                        truncated=last and not success_end)
            for tr in acc.push(step):
                buf.add(tr)
            if step.terminated:
                break
    return buf
