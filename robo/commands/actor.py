"""`robo actor`: act with the learner's latest weights and stream transitions to it.

    robo actor --algo reach --learner tcp://gpu-box:5560 --weights tcp://gpu-box:5561 --actor-id 0

See robo/runtime/actor.py for the loop and its delivery guarantees.
"""

from __future__ import annotations

import argparse

from robo.commands import setup_logging
from robo.transport.auth import add_curve_arguments, curve_from_args

HELP = "run an actor process that streams transitions to a learner"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--algo", default="residual", help="algorithm: reach, residual, or a module path")
    parser.add_argument("--config", default=None, help="the algorithm's YAML config")
    parser.add_argument("--learner", default="tcp://127.0.0.1:5560", help="the learner's RPC endpoint")
    parser.add_argument("--weights", default="tcp://127.0.0.1:5561", help="the learner's weights PUB endpoint")
    parser.add_argument("--actor-id", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=None, help="stop after N episodes (default: until told)")
    parser.add_argument(
        "--learner-timeout-s", type=float, default=60.0, help="give up when the learner is unreachable this long"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "client")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from robo.runtime.actor import run_actor_process
    from robo.transport.malloc import keep_freed_buffers

    keep_freed_buffers()  # received multi-MB frames: reuse their memory, no page faults per message

    return run_actor_process(
        args.algo,
        args.config,
        args.learner,
        args.weights,
        actor_id=args.actor_id,
        seed=args.seed,
        n_episodes=args.episodes,
        curve=curve_from_args(args, "client"),
        learner_timeout_s=args.learner_timeout_s,
    )
