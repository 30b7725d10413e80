"""`robo actor`: act with the learner's latest weights and stream rows to it.

    robo actor --learner tcp://gpu-box:5560 --weights tcp://gpu-box:5561 --actor-id 0
    robo actor --learner tcp://gpu-box:5560 --weights tcp://gpu-box:5561 base=/local/copy/of/checkpoint
    robo actor --learner tcp://gpu-box:5560 --weights tcp://gpu-box:5561 --cell configs/cells/franka_lab.yaml

The algorithm and its resolved config come from the learner ("config_request"), so an actor always
acts with the learner's networks and hyper-parameters. `key=value` overrides change only what is
local to this machine: where the base checkpoint or the demos are (`base=`, `demos=`), `n_envs`.
See robo/runtime/actor.py for the loop and its delivery guarantees.
"""

from __future__ import annotations

import argparse
import logging
import time

from robo.commands import on_signals, setup_logging
from robo.transport.auth import add_curve_arguments, curve_from_args

HELP = "run an actor process that streams rows to a learner"
LOCAL_KEYS = ("base", "demos", "n_envs", "torch_threads", "default_base")
log = logging.getLogger("robo.actor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help=f"local overrides of the learner's config ({', '.join(LOCAL_KEYS)})")
    parser.add_argument("--algo", default=None, help="expected algorithm (checked against the learner's)")
    parser.add_argument("--learner", default="tcp://127.0.0.1:5560", help="the learner's RPC endpoint")
    parser.add_argument("--weights", default="tcp://127.0.0.1:5561", help="the learner's weights PUB endpoint")
    parser.add_argument("--actor-id", type=int, default=0, help="this actor's index (seeds its episodes)")
    parser.add_argument("--batches", type=int, default=None, help="stop after N batches (default: until told)")
    parser.add_argument("--learner-timeout-s", type=float, default=60.0,
                        help="give up when the learner is unreachable this long")
    parser.add_argument("--cell-instance", type=int, default=0,
                        help="--cell: the first copy of a sim cell this actor opens (k actors on one cell)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO or WARNING (default: %(default)s)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "client")
    from robo.cells.training import add_cell_argument

    add_cell_argument(parser, "act")  # robo/cells/training.py


def fetch_config(endpoint: str, curve, timeout_s: float) -> dict:
    """The learner's {"algo", "config"}, asked for until it answers or `timeout_s` passes."""
    from robo.transport import PeerTimeout, RpcClient

    t0 = time.monotonic()
    with RpcClient(endpoint, name="actor-config", curve=curve, timeout_s=1.0, retries=0) as client:
        while True:
            try:
                return dict(client.call("config_request", None, {}).meta)
            except PeerTimeout:
                if time.monotonic() - t0 > timeout_s:
                    raise ConnectionError(f"no answer for {timeout_s:.0f} s (is `robo learner` running there? "
                                          "--learner-timeout-s to wait longer)") from None
                client.reconnect()


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from robo.config import build_config
    from robo.learn.algo import get_algorithm
    from robo.learn.spine import Collector, feature_stats, resolve_base_for
    from robo.runtime.actor import Actor
    from robo.transport.malloc import keep_freed_buffers

    keep_freed_buffers()  # received multi-MB frames: reuse their memory, no page faults per message
    bad = [o for o in args.overrides if "=" not in o or o.split("=", 1)[0].split(".")[0] not in LOCAL_KEYS]
    if bad:
        raise ValueError(f"unexpected argument '{bad[0]}': local overrides are key=value with key in {LOCAL_KEYS}")
    curve = curve_from_args(args, "client")
    try:
        described = fetch_config(args.learner, curve, args.learner_timeout_s)
    except ConnectionError as e:
        log.error("learner at %s unreachable: %s", args.learner, e)
        return 2
    if args.algo is not None and described["algo"] != args.algo:
        raise ValueError(f"--algo {args.algo}: the learner at {args.learner} runs {described['algo']}")
    algo = get_algorithm(described["algo"])
    cfg = build_config(algo.config_class, described["config"], args.overrides, source=f"learner {args.learner}")
    base, dataset, _ = resolve_base_for(cfg)  # the learner has resolved (and cached) it first
    seed = cfg.seed + 7919 * (args.actor_id + 1)  # distinct episodes per actor, never the eval seeds' range
    import torch

    torch.set_num_threads(max(1, cfg.torch_threads or 1))
    env_fn, gates = None, None
    if args.cell:  # the envs are copies of a cell (a sim cell: N at once; a real one: one), in real time
        from robo.cells.training import intervention_fn, rl_env_fn

        env_fn = rl_env_fn(args.cell, cfg.task, base, args.cameras, session_keys=bool(args.teleop),
                           first_instance=args.cell_instance)
        gates = intervention_fn(args, algo) if args.teleop else None  # the operator is where the robot is
    elif args.teleop:
        raise ValueError("--teleop: interventions act on a robot cell: add --cell <cell>")
    collector = Collector(algo, cfg, base, seed=seed, stats=feature_stats(base, dataset), env_fn=env_fn,
                          intervention_fn=gates)
    actor = Actor(collector, args.learner, args.weights, actor_id=args.actor_id, curve=curve,
                  learner_timeout_s=args.learner_timeout_s, max_unacked_rows=cfg.max_actor_lead)
    on_signals(actor.stop)
    try:
        return actor.run(args.batches)
    finally:
        actor.close()
        collector.close()
