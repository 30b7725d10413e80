"""Evaluation: roll out a (base [+ residual]) policy on fixed seeds and report success with a 95% CI.

Every evaluation runs exactly the episodes seeded `seed, seed+1, ..., seed+n-1` (envs step in
parallel, batching the base's chunk predictions), so two evaluations with the same seed see the same
episodes: the same initial states, and a robo chunk policy's sampling noise drawn from the episode's own
seed, so an episode's outcome does not depend on `n_parallel` or on which episodes shared its batch
(DDPM sampling excepted: its per-step noise comes from one shared generator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robo.data.atomic import atomic_path, atomic_write_json
from robo.learn.common import wilson_interval
from robo.learn.residual_env import ActionScaler, base_executor, check_base_fits_task, make_env, step_all, step_pool
from robo.policies.common.normalize import StateNormalizer
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
    progress: str | None = None,
    executor_mode: str = "sync",
) -> EvalResult:
    """Run `n_episodes` seeded episodes of base (+ residual); optionally save the first `n_videos` as mp4
    (each frame captioned with its seed and step, the outcome on the last ones); `progress` names a
    progress line over the episodes (None: silent). `executor_mode="async"` (one env, `n_parallel=1`)
    runs the base as on a robot (robo.cells)."""
    successes, lengths, frames = _rollout(task, base, n_episodes, seed, residual, stats, n_parallel,
                                          n_action_steps, n_videos, env_kwargs, progress, executor_mode)
    videos = []
    if n_videos and video_dir is not None:
        video_dir = Path(video_dir)
        video_dir.mkdir(parents=True, exist_ok=True)
        for ep, fs in sorted(frames.items()):
            if fs and fs[0] is not None:
                outcome = "success" if successes[ep] else "failure"
                path = video_dir / f"episode_{ep:03d}_seed{seed + ep}_{outcome}.mp4"
                label = f"{task} | seed {seed + ep}"
                write_mp4(path, [_cell(fs, t, successes[ep], f"{label} | step {t}") for t in range(len(fs))], fps=10)
                videos.append(str(path))
    return EvalResult(task, n_episodes, successes, lengths, seed, videos=videos)


def _rollout(
    task: str,
    base: Any | None,
    n_episodes: int,
    seed: int,
    residual: ResidualFn | None,
    stats: dict | None,
    n_parallel: int,
    n_action_steps: int | None,
    n_render: int,
    env_kwargs: dict[str, Any] | None,
    progress: str | None = None,
    executor_mode: str = "sync",
) -> tuple[list[bool], list[int], dict[int, list[np.ndarray]]]:
    """(success, length) of each episode in seed order, and the camera frames of the first `n_render`."""
    from robo.learn.common import ProgressLine

    line = ProgressLine(n_episodes, progress) if progress else None
    n_parallel = max(1, min(n_parallel, n_episodes))
    envs = [make_env(task, **(env_kwargs or {})) for _ in range(n_parallel)]
    pool = None
    try:  # the envs close however the rollout ends (a cell's controller holds, its lease is released)
        if base is not None:
            check_base_fits_task(base, envs[0], task)
        space = envs[0].action_space
        scaler = ActionScaler(space.low, space.high)
        state_dim = int(np.prod(envs[0].observation_space[STATE].shape))
        normalizer = StateNormalizer(stats if stats is not None else getattr(base, "stats", None), STATE, state_dim)
        runner = base_executor(base, n_parallel, n_action_steps, seed, executor_mode,
                               float(envs[0].metadata.get("render_fps", 10)))
        act_dim = int(np.prod(space.shape))
        pool = step_pool(envs)

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
            if runner is not None:  # the base's noise too comes from the episode's seed, whatever the batch
                runner.reset(seed=seed + ep, env=i)
            if ep < n_render:
                frames[ep] = [_frame(envs[i], raw[i])]

        for i in range(n_parallel):
            start(i)
        while any(e is not None for e in slot_episode):
            active = [i for i in range(n_parallel) if slot_episode[i] is not None]
            obs_raw = [raw[i] for i in active]
            if runner is not None:
                base_norm = scaler.normalize(runner.act_batch(obs_raw, active))  # type: ignore[arg-type]
            else:
                base_norm = np.zeros((len(active), act_dim), np.float32)
            action = base_norm
            if residual is not None:
                feats = np.stack([normalizer(np.asarray(o[STATE], np.float32)) for o in obs_raw])  # type: ignore[index]
                action = np.clip(base_norm + residual(feats, base_norm), -1.0, 1.0)
            results = step_all([envs[i] for i in active], [scaler.unnormalize(a) for a in action], pool)
            for j, i in enumerate(active):
                raw[i], _, term, trunc, info = results[j]
                steps[i] += 1
                ep = slot_episode[i]
                if ep in frames:
                    frames[ep].append(_frame(envs[i], raw[i]))
                if term or trunc:
                    successes[ep] = bool(info.get("success", False))  # type: ignore[index]
                    lengths[ep] = steps[i]  # type: ignore[index]
                    if line is not None:
                        k = len(successes)
                        line.update(k, {"success": sum(successes.values()) / k}, force=k == n_episodes)
                    start(i)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        for env in envs:
            env.close()
        if line is not None:
            line.close()
    order = range(n_episodes)
    return [successes[e] for e in order], [lengths[e] for e in order], frames


def comparison_video(
    path: str | Path,
    task: str,
    base: Any,
    residual: ResidualFn | None,
    n_seeds: int,
    seed: int = 10_000,
    stats: dict | None = None,
    n_action_steps: int | None = None,
    camera: str = "front",
    image_size: int = 224,
    tuned: Any | None = None,
) -> tuple[list[bool], list[bool]]:
    """An mp4 grid to watch what the residual changes: one row per seed (`seed`, `seed+1`, ...), the base
    on the left and base + residual on the right, each cell frozen at its episode's end under its outcome.
    `tuned`: a fine-tuned policy in place of the base on the right (RL on the policy itself).

    Returns the (base, base + residual) successes of the rendered episodes (their own rollouts: the
    base samples its noise per batch, so an episode may end differently than in a larger evaluation)."""
    env_kwargs = {"cameras": (camera,), "image_size": image_size}
    columns = []
    for policy, res in ((base, None), (tuned if tuned is not None else base, residual)):
        ok, _, frames = _rollout(task, policy, n_seeds, seed, res, stats, 10, n_action_steps, n_seeds, env_kwargs)
        if any(frames[ep][0] is None for ep in frames):
            raise ValueError(f"{task} renders no camera {camera!r}")
        columns.append((ok, [frames[ep] for ep in range(n_seeds)]))
    n_frames = max(len(fs) for _, column in columns for fs in column) + 10  # +1 s on the last frame
    labelled = list(zip(columns, ("base", "fine-tuned" if tuned is not None else "base + residual")))
    grid = []
    for t in range(n_frames):
        rows = []
        for ep in range(n_seeds):
            cells = [_cell(column[ep], t, ok[ep], f"{label} | seed {seed + ep}") for (ok, column), label in labelled]
            rows.append(np.concatenate([cells[0], np.full((cells[0].shape[0], 4, 3), 255, np.uint8), cells[1]], 1))
        grid.append(np.concatenate(rows, 0))
    write_mp4(path, grid, fps=10)
    return columns[0][0], columns[1][0]


def _cell(frames: list[np.ndarray], t: int, success: bool, label: str) -> np.ndarray:
    """One video cell at time t: the frame (the last one once the episode ended) under a two-line caption."""
    import cv2

    frame = frames[min(t, len(frames) - 1)]
    bar = np.full((36, frame.shape[1], 3), 40, np.uint8)
    cv2.putText(bar, label, (6, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (235, 235, 235), 1, cv2.LINE_AA)
    if t >= len(frames) - 1:  # the episode has ended: its outcome
        text = f"{'success' if success else 'failure'} after {len(frames) - 1} steps"
        colour = (90, 220, 90) if success else (240, 90, 90)
        cv2.putText(bar, text, (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
    return np.concatenate([bar, np.ascontiguousarray(frame)], 0)


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

    h, w = frames[0].shape[:2]
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        for f in frames:
            img = np.ascontiguousarray(f[: stream.height, : stream.width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_report(path: str | Path, results: dict[str, EvalResult], extra: dict[str, Any] | None = None) -> None:
    """JSON report of one or more labelled evaluations (atomic write)."""
    payload = {"results": {k: v.to_json() for k, v in results.items()}, **(extra or {})}
    atomic_write_json(path, payload)


def plot_success(path: str | Path, results: dict[str, EvalResult], title: str = "") -> None:
    """Bar plot of success rates with 95% Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(results)
    rates = [100 * results[k].success_rate for k in labels]
    lo = [100 * (results[k].success_rate - results[k].ci95[0]) for k in labels]
    hi = [100 * (results[k].ci95[1] - results[k].success_rate) for k in labels]
    fig, ax = plt.subplots(figsize=(2.4 + 1.4 * len(labels), 3.4))
    ax.bar(labels, rates, yerr=[lo, hi], capsize=6, color=["#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3"][: len(labels)])
    ax.set_ylim(0, 112)
    ax.set_ylabel("success rate (%)")
    counts = sorted({results[k].n_episodes for k in labels})
    n = "/".join(map(str, counts))
    ax.set_title(f"{title + ': ' if title else ''}{n} episodes each", fontsize=10)
    ax.text(0.99, 0.99, "bars: 95% Wilson intervals", transform=ax.transAxes, ha="right", va="top", fontsize=8,
            color="#555555")
    for x, k in enumerate(labels):
        r = rates[x]
        ax.text(x + 0.08, r + 2, f"{r:.0f}% ({sum(results[k].successes)}/{results[k].n_episodes})", ha="left",
                fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
