"""`robo eval`: evaluate a BC checkpoint (optionally with a trained residual) on a task.

Prints the success rate with a 95% Wilson interval and the mean episode length, and writes
`report.json`, `success.png` and mp4 videos of the first episodes (when the task renders a camera).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "evaluate a checkpoint on a task: success rate with 95% interval, report, plot, videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="BC checkpoint folder (or a BC run folder)")
    parser.add_argument("--task", default=None, help="task id (default: the one recorded in the checkpoint)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=10_000, help="first episode seed (default: %(default)s)")
    parser.add_argument("--residual", default=None, help="residual run folder to add on top of the base")
    parser.add_argument("--videos", type=int, default=3, help="episodes to save as mp4 (default: %(default)s)")
    parser.add_argument("--camera", default="front", help="camera rendered for videos (default: %(default)s)")
    parser.add_argument("--n-action-steps", type=int, default=0, help="execution horizon (0: the policy's own)")
    parser.add_argument("--out", default=None, help="report folder (default: <checkpoint>/../eval_<task>)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from robo.learn.evaluate import evaluate, plot_success, write_report
    from robo.policies import load_policy

    ckpt = Path(args.policy)
    if not ckpt.exists():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    if (ckpt / "checkpoint").is_dir():
        ckpt = ckpt / "checkpoint"
    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} must be >= 1")
    task = args.task
    if not task and (ckpt / "train_info.json").is_file():
        task = json.loads((ckpt / "train_info.json").read_text()).get("env_id")
    if not task:
        raise ValueError("no task: pass --task <id> (the checkpoint records none)")
    policy = load_policy(ckpt)
    residual = None
    label = "base"
    if args.residual:
        from robo.learn.residual_td3 import load_residual_fn

        residual, label = load_residual_fn(args.residual), "base+residual"
    out = Path(args.out) if args.out else ckpt.parent / f"eval_{task}"
    out.mkdir(parents=True, exist_ok=True)
    n_action_steps = args.n_action_steps or None
    result = evaluate(task, policy, args.episodes, seed=args.seed, residual=residual, n_action_steps=n_action_steps)
    if args.videos > 0:
        # Rendering costs ~50 ms/frame on CPU, so only a few extra episodes render a camera.
        shown = evaluate(task, policy, args.videos, seed=args.seed, residual=residual, n_action_steps=n_action_steps,
                         n_videos=args.videos, video_dir=out / "videos",
                         env_kwargs={"cameras": (args.camera,), "image_size": 96})
        result.videos = shown.videos
    print(result.summary(f"{label} on {task}"))
    write_report(out / "report.json", {label: result}, extra={"checkpoint": str(ckpt), "residual": args.residual})
    plot_success(out / "success.png", {label: result}, title=task)
    print(f"report: {out / 'report.json'}; plot: {out / 'success.png'}"
          + (f"; videos: {out / 'videos'}" if result.videos else ""))
    return 0
