"""The `robo` command. Each subcommand lives in its own module under robo/commands/.

A command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their subcommand runs, so `robo --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module; order is the order shown in `robo --help`.
COMMANDS = {
    "info": "robo.commands.info",
    "collect": "robo.commands.collect",
    "retarget": "robo.commands.retarget",
    "train": "robo.commands.train",
    "eval": "robo.commands.eval",
    "resources": "robo.commands.resources",
    "serve": "robo.commands.serve",
    "actor": "robo.commands.actor",
    "learner": "robo.commands.learner",
    "keys": "robo.commands.keys",
}

HELP = {
    "info": "show versions, registered tasks, policies, drivers and whether the C++ controller is built",
    "collect": "record demonstration episodes (scripted expert or human teleop) into a dataset",
    "retarget": "retarget a one-arm (Panda) dataset's end-effector paths onto G1BoxLift-v0 episodes",
    "train": "train a BC policy (`robo train bc`) or fine-tune one with residual RL (`robo train --residual`)",
    "eval": "evaluate a checkpoint on a task: success rate with 95%% interval, report, plot, videos",
    "resources": "list, discover and check hardware resources of a cell (arms, cameras, teleop devices)",
    "serve": "serve a policy checkpoint to edge clients over ZMQ",
    "actor": "run an actor process that streams transitions to a learner",
    "learner": "run a learner process that trains from actors' transitions and publishes weights",
    "keys": "generate CurveZMQ key pairs for authenticated transport",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robo",
        description="robo: learn robot manipulation in MuJoCo and on real hardware.",
        epilog="Run `robo <command> --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        sub.add_parser(name, help=HELP[name], add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help") and argv[0] not in COMMANDS:
            parser.print_usage(sys.stderr)
            print(f"robo: error: unknown command '{argv[0]}' (choose from {', '.join(COMMANDS)})", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name])
    cmd_parser = argparse.ArgumentParser(prog=f"robo {name}", description=getattr(module, "HELP", HELP[name]))
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_intermixed_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("\nrobo: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        # Expected user-facing failures (bad config, missing files, bad data, an unreachable peer): one clear line.
        if getattr(args, "debug", False):
            raise
        print(f"robo {name}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
