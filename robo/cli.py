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
    "distill": "robo.commands.distill",
    "eval": "robo.commands.eval",
    "run": "robo.commands.run",
    "intervene": "robo.commands.intervene",
    "console": "robo.commands.console",
    "resources": "robo.commands.resources",
    "serve": "robo.commands.serve",
    "actor": "robo.commands.actor",
    "learner": "robo.commands.learner",
    "keys": "robo.commands.keys",
    "cluster": "robo.commands.cluster",
}

HELP = {
    "info": "show versions, registered tasks, policies, drivers and whether the C++ controller is built",
    "collect": "record demonstration episodes (scripted expert or human teleop) into a dataset",
    "retarget": "retarget a one-arm (Panda) dataset's end-effector paths onto G1BoxLift-v0 episodes",
    "train": "train a BC policy (`robo train bc`) or fine-tune one with RL (`--residual`, `--algo reinflow|rl100`)",
    "distill": "distil a K-step flow / DDIM policy into a 1-step consistency head (an ordinary checkpoint)",
    "eval": "evaluate a checkpoint on a task: success rate with 95%% interval, report, plot, videos",
    "run": "run a policy on a robot cell (sim or real) with a live status line, recording every episode",
    "intervene": "human-in-the-loop sessions on a cell (RaC, HG-DAgger): take over, recover, correct; retrain",
    "console": "operator console: attach a web page to a running session, or browse a recorded dataset",
    "resources": "list, discover and check hardware resources of a cell (arms, cameras, teleop devices)",
    "serve": "serve a policy checkpoint to edge clients over ZMQ",
    "actor": "run an actor process that acts with a learner's weights and streams rows to it",
    "learner": "run a learner process that trains from actors' rows and publishes weights",
    "keys": "generate CurveZMQ key pairs for authenticated transport",
    "cluster": "robots as Ray cluster resources: join a node with its cell; nodes, robots, GPUs, holders",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robo",
        description="robo: learn robot manipulation in MuJoCo and on real hardware.",
        epilog="Run `robo <command> --help` for a command's options; `robo --version` for the version.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        sub.add_parser(name, help=HELP[name], add_help=False)
    return parser


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("robo")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"robo {version()}")
        return 0
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
    if ("-h" in rest or "--help" in rest) and hasattr(module, "help_epilog"):
        extra = module.help_epilog(rest)  # e.g. the config keys of what `robo train ... --help` would train
        if extra:
            cmd_parser.formatter_class = argparse.RawDescriptionHelpFormatter
            cmd_parser.epilog = f"{cmd_parser.epilog or ''}\n\n{extra}".strip()
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
