"""`robo learner`: train from actors' rows, store them durably, publish versioned weights.

    robo learner --algo td3 --config cfg.yaml --run-dir runs/r1 --bind tcp://*:5560 --pub tcp://*:5561
    robo learner --algo td3 --run-dir runs/r1 --resume          # after a crash or kill -9
    robo learner --algo td3 --run-dir runs/r1 total_env_steps=20000 utd=2   # config overrides

The training hyper-parameters, pacing included (`utd`, `max_actor_lead`, `eval_every`...), come
from the algorithm's config exactly as in `robo train --residual` (defaults < CPU profile without a
GPU < --config < key=value); the resolved config is saved in the run folder and sent to actors.
See robo/runtime/learner.py for the protocol and the durability guarantees.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robo.commands import on_signals, setup_logging
from robo.transport.auth import add_curve_arguments, curve_from_args

HELP = "run a learner process that trains from actors' rows and publishes weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robo.learn.algo import ALGORITHMS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. utd=2 seed=1")
    parser.add_argument("--algo", default="td3", help=f"algorithm: {', '.join(ALGORITHMS)}, or a module path")
    parser.add_argument("--config", default=None, help="the algorithm's YAML config")
    parser.add_argument("--run-dir", type=Path, required=True, help="run folder (replay segments, checkpoint, report)")
    parser.add_argument("--bind", default="tcp://*:5560", help="RPC endpoint for actors' rows")
    parser.add_argument("--pub", default="tcp://*:5561", help="PUB endpoint for weights")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--profile", default="auto", choices=["auto", "cpu", "gpu"],
                        help="hyper-parameter profile (auto: gpu if CUDA is available)")
    parser.add_argument("--total-env-steps", type=int, default=None, help="override: total_env_steps")
    parser.add_argument("--utd", type=float, default=None, help="override: the config's utd")
    parser.add_argument("--max-lead", type=int, default=None, help="override: max_actor_lead")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="override: checkpoint_every (rows)")
    parser.add_argument("--seed", type=int, default=None, help="override: seed")
    parser.add_argument("--publish-every", type=int, default=20, help="publish weights every N updates")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the bound endpoints here (JSON)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO or WARNING (default: %(default)s)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "server")
    from robo.cells.training import add_cell_argument

    add_cell_argument(parser, "the actors act")  # a real cell: the view from it, no evaluations


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The shortcut flags as `key=value` overrides (they win over positional overrides)."""
    out = list(args.overrides)
    for flag, key in (("total_env_steps", "total_env_steps"), ("utd", "utd"), ("max_lead", "max_actor_lead"),
                      ("checkpoint_every", "checkpoint_every"), ("seed", "seed")):
        value = getattr(args, flag)
        if value is not None:
            out.append(f"{key}={int(value) if float(value).is_integer() else value}")
    return out


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from robo.data.atomic import atomic_write_json
    from robo.learn.algo import get_algorithm, load_rl_config
    from robo.learn.residual_env import check_task
    from robo.learn.spine import LearnerCore, prepare
    from robo.runtime.learner import Learner, LearnerConfig
    from robo.transport.malloc import keep_freed_buffers

    keep_freed_buffers()  # received multi-MB frames: reuse their memory, no page faults per message
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument '{bad[0]}': overrides look like key.sub=value")
    algo = get_algorithm(args.algo)
    # --resume continues with the run's saved config (a --config given with it replaces that one)
    cfg = load_rl_config(algo, args.config, flag_overrides(args), profile=args.profile,
                         resume_dir=args.run_dir if args.resume and not args.config else None)
    from robo.cells.training import learner_setup_kwargs

    cell_kwargs = learner_setup_kwargs(args, cfg)  # {} unless the actors act on a real cell
    if not cell_kwargs:
        check_task(cfg.task)
    setup = prepare(algo, cfg, args.run_dir, resume=args.resume, placement="learner", **cell_kwargs)
    core = LearnerCore(setup, resume=args.resume, progress_name=f"learner {algo.name}")
    learner = Learner(core, LearnerConfig(bind=args.bind, pub=args.pub, publish_every=args.publish_every),
                      curve=curve_from_args(args, "server"))
    on_signals(learner.stop)
    if args.ready_file is not None:
        atomic_write_json(args.ready_file, {"rpc": learner.endpoint, "pub": learner.pub_endpoint})
    try:
        return learner.run()
    finally:
        learner.close()
        setup.view.close()
