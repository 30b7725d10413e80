"""The embedded default of `robo train --residual`: cached demos -> cached BC base -> residual RL -> report.

With no arguments, `robo train --residual` needs a base policy and demos. They are produced once
(scripted expert demos of the task with a noise level that makes the BC base imperfect, then BC) and
cached under `$ROBO_CACHE` (default `~/.cache/robo`), keyed by every setting that affects them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robo.config import check_range, to_dict


@dataclass
class DefaultBaseConfig:
    """How the embedded default base is made when `base` is empty (cached by these values)."""

    demo_episodes: int = 100
    """Scripted expert episodes recorded as BC data (and as the residual's demo buffer)."""
    demo_noise: float = 0.5
    """Expert noise level of the demos (imperfect demos give an imperfect base, leaving room for RL)."""
    demo_seed: int = 0
    """First reset seed of the demo episodes."""
    policy: str = "flow"
    """BC policy: diffusion | flow (flow with K=4 Euler steps samples ~8x faster on a CPU)."""
    backbone: str = "mlp"
    """Denoiser backbone: mlp (fast on CPU, state tasks) | unet."""
    bc_steps: int = 8000
    """BC gradient steps. Flow-MLP on PandaPegInsert (noise 0.5, 50 eval episodes): 50 demos x 3000 steps
    -> 32% success, 50 x 8000 -> 34%, 100 x 8000 -> 48%, 200 x 3000 -> 22%, 200 x 8000 -> 74%."""
    bc_batch_size: int = 64
    """BC batch size."""
    bc_seed: int = 0
    """BC seed."""

    def __post_init__(self) -> None:
        check_range("demo_episodes", self.demo_episodes, 1, None)
        check_range("demo_noise", self.demo_noise, 0.0, None)
        check_range("bc_steps", self.bc_steps, 1, None)
        if self.policy not in ("diffusion", "flow"):
            raise ValueError(f"policy={self.policy!r} is not one of ['diffusion', 'flow']")
        if self.backbone not in ("mlp", "unet"):
            raise ValueError(f"backbone={self.backbone!r} is not one of ['mlp', 'unet']")


def cache_root() -> Path:
    return Path(os.environ.get("ROBO_CACHE", Path.home() / ".cache" / "robo")).expanduser()


def _key(task: str, cfg: DefaultBaseConfig, fields: tuple[str, ...]) -> str:
    blob = json.dumps({"task": task, "v": 1, **{f: getattr(cfg, f) for f in fields}}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def ensure_demos(task: str, cfg: DefaultBaseConfig) -> Path:
    """Scripted demos for `task`, recorded once and cached."""
    from robo.learn.demos import collect_scripted

    key = _key(task, cfg, ("demo_episodes", "demo_noise", "demo_seed"))
    path = cache_root() / "demos" / f"{task}__noise{cfg.demo_noise}__{cfg.demo_episodes}ep__{key}"
    if (path / ".complete").is_file():
        return path
    if path.exists():  # an interrupted earlier attempt: start over, never trust half a dataset
        shutil.rmtree(path)
    print(f"[default base] recording {cfg.demo_episodes} scripted demos of {task} (noise {cfg.demo_noise}) "
          f"-> {path}", flush=True)
    collect_scripted(task, path, cfg.demo_episodes, noise=cfg.demo_noise, seed=cfg.demo_seed)
    (path / ".complete").write_text("ok\n")
    return path


def ensure_base(task: str, cfg: DefaultBaseConfig) -> tuple[Path, Path]:
    """(BC checkpoint folder, demo dataset folder) for the embedded default, trained once and cached."""
    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.policies import make_config

    demos = ensure_demos(task, cfg)
    key = _key(task, cfg, tuple(to_dict(cfg)))
    run_dir = cache_root() / "bases" / f"{task}__{cfg.policy}__{key}"
    ckpt = run_dir / "checkpoint"
    if (run_dir / ".complete").is_file():
        return ckpt, demos
    if run_dir.exists():
        shutil.rmtree(run_dir)
    print(f"[default base] training a {cfg.policy} BC base on {demos.name} ({cfg.bc_steps} steps) -> {run_dir}",
          flush=True)
    bc_cfg = BCTrainConfig(data=str(demos), task=task, steps=cfg.bc_steps, batch_size=cfg.bc_batch_size,
                           seed=cfg.bc_seed)
    train_bc(bc_cfg, cfg.policy, make_config(cfg.policy, None, [f"backbone={cfg.backbone}"]), run_dir)
    (run_dir / ".complete").write_text("ok\n")
    return ckpt, demos


def resolve_base(task: str, base: str, demos: str, default: DefaultBaseConfig) -> tuple[Any, Any, Path, Path | None]:
    """Load (policy, dataset or None, checkpoint path, dataset path) for a residual run."""
    from robo.data import Dataset
    from robo.policies import checkpoint_dir, load_policy, read_train_info

    if base:
        if not Path(base).exists():
            raise FileNotFoundError(f"base checkpoint not found: {base}")
        ckpt = checkpoint_dir(base)
        data_path: Path | None = Path(demos) if demos else None
        if data_path is None:
            recorded = read_train_info(ckpt).get("dataset")
            data_path = Path(recorded) if recorded and Path(recorded).exists() else None
    else:
        ckpt, data_path = ensure_base(task, default)
        if demos:
            data_path = Path(demos)
    policy = load_policy(ckpt)
    dataset = Dataset(data_path) if data_path is not None else None
    if dataset is not None and dataset.spec.action_dim != policy.spec.action_dim:
        raise ValueError(f"demo dataset {data_path} has action dim {dataset.spec.action_dim}, "
                         f"the base {ckpt} expects {policy.spec.action_dim}")
    return policy, dataset, ckpt, data_path


def finish_report(run_dir: Path, task: str, base: Any, residual_fn: Any, evals: list[dict[str, float]],
                  n_episodes: int, seed: int, stats: Any, n_action_steps: int | None,
                  extra: dict[str, Any] | None = None,
                  curve_label: str | None = None, n_videos: int = 0, tuned: Any | None = None) -> dict[str, Any]:
    """Final base vs base+residual evaluation on the same seeds: a table, results.md, report.json, plots
    and (with `n_videos`) a side-by-side video of the first seeds. `tuned`: a fine-tuned policy that
    replaces the base in the second row (RL on the policy itself, e.g. ReinFlow).

    `evals`: the learning curve, [{"env_steps", "success_rate"}], drawn as `curve_label`."""
    from robo.learn.evaluate import comparison_video, evaluate, plot_success, write_report

    label = "fine-tuned policy" if tuned is not None else "base + residual"
    curve_label = curve_label or f"{label} (eval)"
    base_res = evaluate(task, base, n_episodes, seed=seed, stats=stats, n_action_steps=n_action_steps)
    resid_res = evaluate(task, tuned if tuned is not None else base, n_episodes, seed=seed, residual=residual_fn,
                         stats=stats, n_action_steps=n_action_steps)
    rows = [("base (BC)", base_res), (label, resid_res)]
    lines = [f"{'policy':<18} {'success':>8}  {'95% CI':>15}  {'mean length':>11}"]
    for name, r in rows:
        lo, hi = r.ci95
        ci = f"[{100 * lo:5.1f}, {100 * hi:5.1f}]"
        lines.append(f"{name:<18} {100 * r.success_rate:7.1f}%  {ci:>15}  {r.mean_length:11.1f}")
    table = "\n".join(lines)
    seeds = f"seeds {seed}..{seed + n_episodes - 1}"
    print(f"\nfinal evaluation on {task}, {n_episodes} episodes, {seeds}\n{table}", flush=True)
    info = dict(extra or {})
    write_report(run_dir / "report.json", {"base": base_res, "residual": resid_res},
                 extra={"learning_curve": evals, **info})
    plot_success(run_dir / "final_eval.png", {"base": base_res, label.replace(" + ", "+"): resid_res}, title=task)
    plot_learning_curve(run_dir / "learning_curve.png", evals, base_rate=base_res.success_rate, task=task,
                        label=curve_label)
    video = None
    if n_videos > 0:  # last: a machine without OpenGL still gets every result above
        video = run_dir / "base_vs_residual.mp4"
        try:
            comparison_video(video, task, base, residual_fn, n_videos, seed=seed, stats=stats,
                             n_action_steps=n_action_steps, tuned=tuned)
            print(f"video: {video} (base | {label} on {n_videos} seeds)", flush=True)
        except Exception as e:  # noqa: BLE001 - rendering is optional; say why and keep the run
            print(f"video skipped: {type(e).__name__}: {e}", flush=True)
            video = None
    write_results_md(run_dir, task, table, f"{n_episodes} episodes, {seeds}", info, video, n_videos,
                     tuned=tuned is not None)
    return {"base": base_res.to_json(), "residual": resid_res.to_json()}


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def write_results_md(run_dir: Path, task: str, table: str, episodes: str, info: dict[str, Any],
                     video: Path | None, n_videos: int, tuned: bool = False) -> None:
    """results.md: what ran, the final table, the plots and the video, and how to run the policy again
    (`tuned`: the run fine-tuned the policy itself, saved as a checkpoint in `policy/`)."""
    algo = str(info.get("algo", "?"))
    run = [f"{info['env_steps']:,} env steps" if "env_steps" in info else None,
           f"{info['episodes']:,} episodes" if "episodes" in info else None,
           f"{info['actors']} actor processes" if "actors" in info else None,
           f"{_duration(info['wall_clock_s'])} of training" if info.get("wall_clock_s") else None]
    base = info.get("base_checkpoint")
    base = None if base in (None, "None") else base
    title = f"Residual {algo.upper()}" if base and not tuned else algo.upper()
    text = [f"# {title} on {task}", "",
            f"- base: `{base}`" if base else "- base: none (the policy acts alone)",
            *([f"- run: {', '.join(r for r in run if r)}"] if any(run) else []),
            f"- final evaluation: {episodes}, the same for both rows (95% Wilson intervals)", "",
            "```", table, "```", "",
            "![learning curve](learning_curve.png) ![final evaluation](final_eval.png)", ""]
    second = "the fine-tuned policy" if tuned else "base + residual"
    if video is not None:
        text += [f"Watch it: [base_vs_residual.mp4](base_vs_residual.mp4), base (left) and {second} "
                 f"(right) on the first {n_videos} evaluation seeds.", ""]
    if isinstance(info.get("results_md"), str):
        text += [info["results_md"], ""]
    if tuned:  # an ordinary checkpoint: eval, serve, a residual's base, deployment
        command = f"robo eval --policy {shlex.quote(str(run_dir / 'policy'))} --task {task}"
    else:
        command = ((f"robo eval --policy {shlex.quote(str(base))} " if base else "robo eval ")
                   + f"--residual {shlex.quote(str(run_dir))} --task {task}")
    text += ["Evaluate it again (`robo eval --help` for episodes, seeds and videos):", "", "```", command, "```", ""]
    (run_dir / "results.md").write_text("\n".join(text))


def plot_learning_curve(path: Path, evals: list[dict[str, float]], base_rate: float, task: str,
                        label: str = "base + residual (eval)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robo.learn.common import wilson_interval

    steps = np.array([e["env_steps"] for e in evals])
    rates = np.array([100 * e["success_rate"] for e in evals])
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    counts = [int(e.get("n_episodes", 0)) for e in evals]
    if all(counts):  # 95% Wilson interval of each evaluation
        ci = [wilson_interval(round(e["success_rate"] * n), n) for e, n in zip(evals, counts)]
        err = np.array([[r - 100 * lo, 100 * hi - r] for r, (lo, hi) in zip(rates, ci)]).T
        ax.errorbar(steps, rates, yerr=err, fmt="o-" if len(steps) < 50 else "-", color="#1b9e77", capsize=3,
                    label=f"{label}, {'/'.join(map(str, sorted(set(counts))))} episodes, 95% CI")
    else:
        ax.plot(steps, rates, "o-" if len(steps) < 50 else "-", color="#1b9e77", label=label)
    ax.axhline(100 * base_rate, color="#7570b3", ls="--", label="base (BC), final evaluation")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"RL fine-tuning on {task}", fontsize=10)
    ax.grid(alpha=0.3)
    # the legend below the axes: never over the curve
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
