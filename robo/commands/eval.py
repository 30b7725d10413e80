"""`robo eval`: evaluate a BC checkpoint (optionally with a trained residual) on a task.

Prints the success rate with a 95% Wilson interval and the mean episode length, and writes
`report.json`, `success.png` and mp4 videos of the first episodes (when the task renders a camera).

Every evaluation gets a folder of its own and never touches an earlier one: by default
`<run>/eval_<task>__<base | residual-<run name>>__<YYYYmmdd-HHMMSS>` beside the checkpoint (so an
evaluation with `--residual` and one without never share a report), and `--out` must name a folder that
does not exist yet (or is empty). The files are written into a hidden sibling folder and renamed into
place together when the evaluation is complete, so a folder that exists holds one whole evaluation.

`--policy tcp://host:5555` evaluates a policy served by `robo serve` instead of a local checkpoint:
every chunk is requested over the network (the report adds the round-trip times). With `--residual`
the residual runs here, on top of the served base (the heavy base on a GPU box, the small residual
MLP on the robot's computer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

from robo.transport.auth import add_curve_arguments, curve_from_args

HELP = "evaluate a checkpoint on a task: success rate with 95% interval, report, plot, videos"
ENDPOINT_SCHEMES = ("tcp://", "ipc://")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", default=None,
        help="BC checkpoint folder (or a BC run folder), or a `robo serve` endpoint tcp://host:port "
             "(default with --residual: the base the run was trained on)"
    )
    parser.add_argument("--task", default=None, help="task id (default: the one recorded in the checkpoint)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=10_000, help="first episode seed (default: %(default)s)")
    parser.add_argument("--residual", default=None,
                        help="RL run folder (any algorithm: td3, ppo, sac...): its policy on top of the base")
    parser.add_argument("--videos", type=int, default=3, help="episodes to save as mp4 (default: %(default)s)")
    parser.add_argument("--camera", default="front", help="camera rendered for videos (default: %(default)s)")
    parser.add_argument("--video-size", type=int, default=224, help="video frame size in pixels (default: %(default)s)")
    parser.add_argument("--n-action-steps", type=int, default=0, help="execution horizon (0: the policy's own)")
    parser.add_argument("--out", default=None, help="report folder, must not exist yet "
                        "(default: <run>/eval_<task>__<base|residual-<run>>__<time>, a new one each time)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "client")
    from robo.cells.evaluate import add_cell_arguments

    add_cell_arguments(parser)  # --cell: the same evaluation on a robot cell (robo/cells/evaluate.py)


def _local_policy(args: argparse.Namespace) -> tuple[Any, str, Path]:
    """(policy, task, folder the default report folder goes in) of a checkpoint folder."""
    from robo.policies import checkpoint_dir, checkpoint_task, load_policy

    if not Path(args.policy).exists():
        raise FileNotFoundError(f"checkpoint not found: {args.policy}")
    ckpt = checkpoint_dir(args.policy)
    task = args.task or checkpoint_task(ckpt)
    if not task:
        raise ValueError("no task: pass --task <id> (the checkpoint records none)")
    return load_policy(ckpt), task, ckpt.parent


def _remote_policy(args: argparse.Namespace) -> tuple[Any, str, Path]:
    """(RemotePolicy, task, folder the default report folder goes in) of a `robo serve` endpoint."""
    from robo.runtime.remote_policy import RemotePolicy
    from robo.transport import PeerTimeout

    try:
        policy = RemotePolicy(args.policy, curve=curve_from_args(args, "client"), name="robo-eval")
    except PeerTimeout:
        raise ConnectionError(f"no policy server answers at {args.policy} (is `robo serve` running there?)") from None
    task = args.task or policy.task
    if not task:
        policy.close()
        raise ValueError(f"no task: pass --task <id> (the server at {args.policy} records none)")
    if args.residual and policy.stats is None:  # the residual's inputs are states normalised by the base's stats
        policy.close()
        raise ValueError(f"--residual: the server at {args.policy} sends no state statistics for the residual's input")
    return policy, task, Path("runs/eval")


def run(args: argparse.Namespace) -> int:
    from robo.learn.evaluate import evaluate, plot_success, write_report
    from robo.learn.residual_env import check_task

    if getattr(args, "cell", None):
        from robo.cells.evaluate import run_cell_eval

        return run_cell_eval(args)
    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} must be >= 1")
    if args.video_size < 16:
        raise ValueError(f"--video-size={args.video_size} must be >= 16 pixels")
    if args.videos < 0:
        raise ValueError(f"--videos={args.videos} must be >= 0")
    if args.task:
        check_task(args.task)
    if args.out and Path(args.out).exists() and (not Path(args.out).is_dir() or any(Path(args.out).iterdir())):
        raise FileExistsError(f"--out {args.out} already exists; pick a new folder (or leave --out out: "
                              f"every evaluation gets a new one)")
    rl_run = None
    if args.residual:
        from robo.learn.algo import load_run

        rl_run = load_run(args.residual)  # the run records which algorithm made it, and on what base
        args.task = args.task or rl_run.task
        if args.policy is None and rl_run.algo.residual:
            args.policy = rl_run.base_checkpoint
            if not args.policy:
                raise ValueError(f"--residual {args.residual}: the run records no base; pass --policy")
    if args.policy is None and rl_run is None:
        raise ValueError("say what to evaluate: --policy <checkpoint | tcp://host:port> and/or --residual <run>")
    remote = args.policy is not None and args.policy.startswith(ENDPOINT_SCHEMES)
    if rl_run is not None and rl_run.policy is not None:  # the run fine-tuned the chunk policy itself
        if args.policy is not None:
            raise ValueError(f"--residual {args.residual}: a {rl_run.algo.name} run is a whole policy, not a "
                             f"residual on --policy (evaluate it alone, or pass --policy {args.residual})")
        policy, task, parent = rl_run.policy, args.task, Path(args.residual)
    elif args.policy is None:  # a policy that acts alone (e.g. SAC): no base
        policy, task, parent = None, args.task, Path(args.residual)
    else:
        policy, task, parent = _remote_policy(args) if remote else _local_policy(args)
    out = Path(args.out) if args.out else report_folder(parent, task, args.residual, remote)
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")  # renamed to `out` once complete
    try:
        residual, stats = None, None
        label = "base"
        if rl_run is not None:
            residual, stats = rl_run.residual, rl_run.stats if rl_run.policy is None else None
            label = "base+residual" if rl_run.algo.residual else rl_run.algo.name
        staging.mkdir(parents=True)
        n_action_steps = args.n_action_steps or None
        result = evaluate(task, policy, args.episodes, seed=args.seed, residual=residual, stats=stats,
                          n_action_steps=n_action_steps, progress=f"eval {label} on {task}")
        if args.videos > 0:
            # Rendering a camera makes a step ~5x dearer (EGL on CPU: ~4 ms against 0.8 ms at 224 px), so only
            # a few extra episodes render one.
            shown = evaluate(task, policy, args.videos, seed=args.seed, residual=residual, stats=stats,
                             n_action_steps=n_action_steps, n_videos=args.videos, video_dir=staging / "videos",
                             env_kwargs={"cameras": (args.camera,), "image_size": args.video_size})
            result.videos = shown.videos
        extra: dict[str, Any] = {"checkpoint": args.policy, "residual": args.residual}
        print(result.summary(f"{label} on {task}"))
        if remote:
            extra["remote"] = {"requests": policy.n_requests, "rtt_ms_p50": policy.rtt_ms(50),
                               "rtt_ms_p99": policy.rtt_ms(99), "policy_version": policy.policy_version}
            print(f"served by {args.policy}: {policy.n_requests} chunk requests, round trip p50 "
                  f"{policy.rtt_ms(50):.1f} ms, p99 {policy.rtt_ms(99):.1f} ms")
        write_report(staging / "report.json", {label: result}, extra=extra)
        plot_success(staging / "success.png", {label: result}, title=task)
        if out.is_dir():
            out.rmdir()  # an empty --out folder: replaced by the complete evaluation
        os.replace(staging, out)
    finally:
        if remote:
            policy.close()
        shutil.rmtree(staging, ignore_errors=True)  # only left over if the evaluation failed
    print(f"report: {out / 'report.json'}; plot: {out / 'success.png'}"
          + (f"; videos: {out / 'videos'}" if result.videos else ""))
    return 0


def report_folder(parent: Path, task: str, residual: str | None, remote: bool = False) -> Path:
    """A new folder `parent/eval_<task>__<base | residual-<run>>__<time>` (`remote_` for a served policy);
    a suffix -2, -3, ... when one of that name exists (two evaluations within a second)."""
    what = f"residual-{Path(residual).resolve().name}" if residual else "base"
    name = f"{'remote' if remote else 'eval'}_{task.replace('/', '_').replace(':', '_')}__{what}__"
    name += time.strftime("%Y%m%d-%H%M%S")
    out, n = parent / name, 1
    while out.exists():
        n += 1
        out = parent / f"{name}-{n}"
    return out
