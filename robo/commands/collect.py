"""`robo collect`: record demonstrations (scripted expert, or a human through a teleop device)."""

from __future__ import annotations

import argparse

HELP = "record demonstration episodes (scripted expert or human teleop) into a dataset"
TELEOP_CHOICES = ("scripted", "keyboard", "gamepad", "spacemouse", "leader", "leader_arm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="PandaPegInsert-v0", help="task id (default: %(default)s)")
    parser.add_argument("--teleop", default="scripted", choices=TELEOP_CHOICES,
                        help="who drives: the task's scripted expert, or a human through a device "
                             "(default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes to record (default: %(default)s)")
    parser.add_argument("--out", required=True, help="dataset folder (created, or appended to)")
    parser.add_argument("--noise", type=float, default=0.0, help="scripted expert noise level (default: 0)")
    parser.add_argument("--seed", type=int, default=None,
                        help="first reset seed (default: 0, or after the seeds an appended dataset already used)")
    parser.add_argument("--cameras", default="", help="comma-separated camera names to record, e.g. front")
    parser.add_argument("--image-size", type=int, default=64, help="camera image size in pixels (default: 64)")
    parser.add_argument("--keep-failures", action="store_true", help="also record failed expert episodes")
    parser.add_argument("--cell", default=None, help="cell YAML (human teleop only)")
    parser.add_argument("--fps", type=int, default=10, help="control rate for human teleop (default: 10)")
    parser.add_argument("--rerun", action="store_true", help="live rerun view (human teleop)")
    from robo.console.cli import add_console_argument

    add_console_argument(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    # every argument is checked before a file is written: a refused command leaves nothing behind
    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} must be >= 1")
    if args.noise < 0:
        raise ValueError(f"--noise={args.noise} must be >= 0")
    if args.image_size < 16:
        raise ValueError(f"--image-size={args.image_size} must be >= 16 pixels")
    if args.fps < 1:
        raise ValueError(f"--fps={args.fps} must be >= 1")
    from robo.learn.residual_env import check_task

    check_task(args.task)
    if args.console and args.teleop == "scripted":
        raise ValueError("--console shows a person's session: use it with --teleop <device> (the scripted expert "
                         "collects in the fast path, without a live loop)")
    if args.teleop != "scripted":
        from robo.teleop.session import run_human_collect

        args.seed = 0 if args.seed is None else args.seed
        return run_human_collect(args)
    from robo.learn.demos import collect_scripted, next_free_seed

    cams = tuple(c for c in args.cameras.split(",") if c)
    seed = next_free_seed(args.out, args.seed)
    summary = collect_scripted(args.task, args.out, args.episodes, noise=args.noise, seed=seed,
                               cameras=cams, image_size=args.image_size, keep_failures=args.keep_failures)
    print(f"recorded {summary['episodes']} episodes to {summary['out']} "
          f"(expert success {100 * summary['expert_success_rate']:.0f}% over {summary['attempts']} attempts)")
    return 0
