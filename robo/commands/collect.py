"""`robo collect`: record demonstrations (scripted expert, or a human through a teleop device)."""

from __future__ import annotations

import argparse

HELP = "record demonstration episodes (scripted expert or human teleop) into a dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="PandaPegInsert-v0", help="task id (default: %(default)s)")
    parser.add_argument("--teleop", default="scripted",
                        help="scripted | keyboard | gamepad | spacemouse | leader (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes to record (default: %(default)s)")
    parser.add_argument("--out", required=True, help="dataset folder (created, or appended to)")
    parser.add_argument("--noise", type=float, default=0.0, help="scripted expert noise level (default: 0)")
    parser.add_argument("--seed", type=int, default=0, help="first reset seed (default: 0)")
    parser.add_argument("--cameras", default="", help="comma-separated camera names to record, e.g. front")
    parser.add_argument("--image-size", type=int, default=64, help="camera image size in pixels (default: 64)")
    parser.add_argument("--keep-failures", action="store_true", help="also record failed expert episodes")
    parser.add_argument("--cell", default=None, help="cell YAML (human teleop only)")
    parser.add_argument("--fps", type=int, default=10, help="control rate for human teleop (default: 10)")
    parser.add_argument("--rerun", action="store_true", help="live rerun view (human teleop)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} must be >= 1")
    if args.teleop != "scripted":
        from robo.teleop.session import run_human_collect

        return run_human_collect(args)
    from robo.learn.demos import collect_scripted

    cams = tuple(c for c in args.cameras.split(",") if c)
    summary = collect_scripted(args.task, args.out, args.episodes, noise=args.noise, seed=args.seed,
                               cameras=cams, image_size=args.image_size, keep_failures=args.keep_failures)
    print(f"recorded {summary['episodes']} episodes to {summary['out']} "
          f"(expert success {100 * summary['expert_success_rate']:.0f}% over {summary['attempts']} attempts)")
    return 0
