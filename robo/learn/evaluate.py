"""Evaluation: roll out a (base [+ residual]) policy on fixed seeds and report success with a 95% CI.

Every evaluation runs exactly the episodes seeded `seed, seed+1, ..., seed+n-1` (envs step in
parallel, batching the base's chunk predictions, but an env never starts a second episode), so two
evaluations with the same seed see the same initial states and are comparable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robo.learn.common import wilson_interval
from robo.learn.residual_env import ActionScaler, BaseRunner, StateNormalizer, check_base_fits_task, make_env
from robo.spec import IMAGE_PREFIX, STATE

# (obs features (N, Do), base action (N, Da) in [-1, 1]) -> residual (N, Da) in normalised units
ResidualFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    task: str
    n_episodes: int
    successes: list[bool]
    lengths: list[int]
    seed: int
    success_rate: float = 0.0
    ci95: tuple[float, float] = (0.0, 1.0)
    mean_length: float = 0.0
    videos: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        k = int(sum(self.successes))
        self.success_rate = k / max(1, self.n_episodes)
        self.ci95 = wilson_interval(k, self.n_episodes)
        self.mean_length = float(np.mean(self.lengths)) if self.lengths else 0.0

    def summary(self, label: str = "") -> str:
        lo, hi = self.ci95
        head = f"{label}: " if label else ""
        return (
            f"{head}success {100 * self.success_rate:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"over {self.n_episodes} episodes, mean length {self.mean_length:.1f} steps"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    task: str,
    base: Any | None,
    n_episodes: int,
    seed: int = 10_000,
    residual: ResidualFn | None = None,
    stats: dict | None = None,
    n_parallel: int = 10,
    n_action_steps: int | None = None,
    n_videos: int = 0,
    video_dir: str | Path | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> EvalResult:
    """Run `n_episodes` seeded episodes of base (+ residual); optionally save the first `n_videos` as mp4."""
    n_parallel = max(1, min(n_parallel, n_episodes))
    envs = [make_env(task, **(env_kwargs or {})) for _ in range(n_parallel)]
    if base is not None:
        check_base_fits_task(base, envs[0], task)
    space = envs[0].action_space
    scaler = ActionScaler(space.low, space.high)
    state_dim = int(np.prod(envs[0].observation_space[STATE].shape))
    normalizer = StateNormalizer(stats if stats is not None else getattr(base, "stats", None), state_dim)
    runner = BaseRunner(base, n_parallel, n_action_steps, seed) if base is not None else None
    act_dim = int(np.prod(space.shape))

    successes: dict[int, bool] = {}
    lengths: dict[int, int] = {}
    frames: dict[int, list[np.ndarray]] = {}
    next_episode = 0
    slot_episode: list[int | None] = [None] * n_parallel
    raw: list[dict[str, np.ndarray] | None] = [None] * n_parallel
    steps = [0] * n_parallel

    def start(i: int) -> None:
        nonlocal next_episode
        if next_episode >= n_episodes:
            slot_episode[i] = None
            return
        ep = next_episode
        next_episode += 1
        slot_episode[i] = ep
        raw[i], _ = envs[i].reset(seed=seed + ep)
        steps[i] = 0
        if runner is not None:
            runner.reset(i)
        if ep < n_videos:
            frames[ep] = [_frame(envs[i], raw[i])]

    for i in range(n_parallel):
        start(i)
    while any(e is not None for e in slot_episode):
        active = [i for i in range(n_parallel) if slot_episode[i] is not None]
        obs_raw = [raw[i] for i in active]
        if runner is not None:
            base_norm = scaler.normalize(runner.actions(obs_raw, active))  # type: ignore[arg-type]
        else:
            base_norm = np.zeros((len(active), act_dim), np.float32)
        action = base_norm
        if residual is not None:
            feats = np.stack([normalizer(np.asarray(o[STATE], np.float32)) for o in obs_raw])  # type: ignore[index]
            action = np.clip(base_norm + residual(feats, base_norm), -1.0, 1.0)
        for j, i in enumerate(active):
            raw[i], _, term, trunc, info = envs[i].step(scaler.unnormalize(action[j]))
            steps[i] += 1
            ep = slot_episode[i]
            if ep in frames:
                frames[ep].append(_frame(envs[i], raw[i]))
            if term or trunc:
                successes[ep] = bool(info.get("success", False))  # type: ignore[index]
                lengths[ep] = steps[i]  # type: ignore[index]
                start(i)
    for env in envs:
        env.close()

    videos = []
    if n_videos and video_dir is not None:
        video_dir = Path(video_dir)
        video_dir.mkdir(parents=True, exist_ok=True)
        for ep, fs in sorted(frames.items()):
            if fs and fs[0] is not None:
                path = video_dir / f"episode_{ep:03d}_{'success' if successes[ep] else 'failure'}.mp4"
                write_mp4(path, fs, fps=10)
                videos.append(str(path))
    order = range(n_episodes)
    return EvalResult(task, n_episodes, [successes[e] for e in order], [lengths[e] for e in order], seed, videos=videos)


def _frame(env: Any, raw: dict[str, np.ndarray] | None) -> np.ndarray | None:
    """A video frame: the first camera in the observation if any, else None (no rendering cost)."""
    if raw is None:
        return None
    for k, v in raw.items():
        if k.startswith(IMAGE_PREFIX):
            return np.asarray(v)
    return None


def write_mp4(path: str | Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """Encode uint8 (H, W, 3) frames to an H.264 mp4 with PyAV (atomic: tmp + rename)."""
    import av

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.mp4")
    h, w = frames[0].shape[:2]
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        for f in frames:
            img = np.ascontiguousarray(f[: stream.height, : stream.width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def write_report(path: str | Path, results: dict[str, EvalResult], extra: dict[str, Any] | None = None) -> None:
    """JSON report of one or more labelled evaluations (atomic write)."""
    path = Path(path)
    payload = {"results": {k: v.to_json() for k, v in results.items()}, **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def plot_success(path: str | Path, results: dict[str, EvalResult], title: str = "") -> None:
    """Bar plot of success rates with 95% Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(results)
    rates = [100 * results[k].success_rate for k in labels]
    lo = [100 * (results[k].success_rate - results[k].ci95[0]) for k in labels]
    hi = [100 * (results[k].ci95[1] - results[k].success_rate) for k in labels]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(labels), 3.2))
    ax.bar(labels, rates, yerr=[lo, hi], capsize=6, color=["#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3"][: len(labels)])
    ax.set_ylim(0, 105)
    ax.set_ylabel("success rate (%)")
    ax.set_title(title or "evaluation (95% Wilson CI)")
    for x, r in enumerate(rates):
        ax.text(x, r + 2, f"{r:.0f}%", ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
