"""`robo retarget`: turn a one-arm (Panda) dataset into demos of the G1 box lift (cross-embodiment demos).

    robo retarget --from data/panda_lift --to G1BoxLift-v0 --out data/g1_from_panda
    robo train bc --data data/g1_from_panda ...      # alone, or merged with G1 demos (robo collect ... --out)
"""

from __future__ import annotations

import argparse

HELP = "retarget a one-arm (Panda) dataset's end-effector paths onto G1BoxLift-v0 episodes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, help="source dataset (TCP + object positions)")
    parser.add_argument("--to", dest="task", default="G1BoxLift-v0", help="target task (default: %(default)s)")
    parser.add_argument("--out", required=True, help="target dataset folder (created, or appended to)")
    parser.add_argument("--seed", type=int, default=50_000,
                        help="reset seed of the first target episode (default: %(default)s; keep it apart from "
                             "evaluation seeds)")
    parser.add_argument("--keep", default="success", choices=["success", "all"],
                        help="keep only the episodes the target robot completes (default) or all")
    parser.add_argument("--max-episodes", type=int, default=None, help="retarget at most this many episodes")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from robo.learn.retarget import retarget_dataset

    s = retarget_dataset(args.source, args.task, args.out, seed=args.seed, keep=args.keep,
                         max_episodes=args.max_episodes)
    print(f"retargeted {s['source_episodes']} episodes of {s['source']} onto {s['task']}: "
          f"{100 * s['target_success_rate']:.0f}% completed by the target robot, {s['saved']} saved to {s['out']}")
    return 0
