"""`robo learner`: train from actors' transitions, store them durably, publish versioned weights.

    robo learner --algo reach --run-dir runs/r1 --bind tcp://*:5560 --pub tcp://*:5561
    robo learner --algo reach --run-dir runs/r1 --resume          # after a crash or kill -9

See robo/runtime/learner.py for the protocol and the durability guarantees.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robo.commands import setup_logging
from robo.transport.auth import add_curve_arguments, curve_from_args

HELP = "run a learner process that trains from actors' transitions and publishes weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--algo", default="residual", help="algorithm: reach, residual, or a module path")
    parser.add_argument("--config", default=None, help="the algorithm's YAML config")
    parser.add_argument("--run-dir", type=Path, required=True, help="run folder (replay segments, state, log)")
    parser.add_argument("--bind", default="tcp://*:5560", help="RPC endpoint for actors' transitions")
    parser.add_argument("--pub", default="tcp://*:5561", help="PUB endpoint for weights")
    parser.add_argument("--total-env-steps", type=int, default=0, help="stop after this many transitions (0 = never)")
    parser.add_argument("--utd", type=float, default=1.0, help="updates per stored transition")
    parser.add_argument("--max-lead", type=int, default=0,
                        help="actors wait while more than N stored transitions are owed updates (0 = never)")
    parser.add_argument("--publish-every", type=int, default=20, help="publish weights every N updates")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="checkpoint every N updates")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, default=None, help="write the bound endpoints here (JSON)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "server")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from robo.runtime.learner import LearnerConfig, run_learner_process
    from robo.transport.malloc import keep_freed_buffers

    keep_freed_buffers()  # received multi-MB frames: reuse their memory, no page faults per message

    cfg = LearnerConfig(
        run_dir=args.run_dir,
        bind=args.bind,
        pub=args.pub,
        total_env_steps=args.total_env_steps,
        utd=args.utd,
        max_lead=args.max_lead,
        publish_every=args.publish_every,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        seed=args.seed,
    )
    return run_learner_process(args.algo, args.config, cfg, curve_from_args(args, "server"), args.ready_file)
