"""`robo cluster`: robots as Ray cluster resources (needs the `ray` extra: pip install "robo[ray]").

    robo cluster join --cell configs/cells/sim_panda.yaml                 # start a head node with this cell
    robo cluster join --cell franka_lab --address 10.0.0.2:6379           # a robot machine joins the head
    robo cluster join --cell franka_lab --print                           # the `ray start` line, nothing run
    robo cluster status                                                   # nodes, robots, GPUs, holders
    robo cluster status --address 10.0.0.2:6379 --json

`join` advertises each leasable resource of the cell (arms `robot:<cell>/<name>`, cameras
`camera:<cell>/<name>`, one unit each) and the label robo.io/cell=<cell>, then runs `ray start`
(`ray stop` leaves the cluster). `robo train --residual --ray --actors-per-robot 1` then places one
actor on each robot's node, where it takes the robot's HAL lease too.
"""

from __future__ import annotations

import argparse

HELP = "robots as Ray cluster resources: join a node with its cell, show nodes, robots, GPUs and holders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("action", choices=["join", "status"], help="join: start or join a node; status: the cluster")
    parser.add_argument("--cell", default=None, help="join: the cell of this machine (YAML or name)")
    parser.add_argument("--address", default=None, help="join: the head's host:port (none: start a head); "
                        "status: the cluster (default: the local one)")
    parser.add_argument("--port", type=int, default=6379, help="join --head: GCS port (default: %(default)s)")
    parser.add_argument("--node-ip", default=None, help="join: this node's IP as the others reach it")
    parser.add_argument("--num-cpus", type=int, default=None, help="join: logical CPUs to offer (default: all)")
    parser.add_argument("--num-gpus", type=int, default=None, help="join: GPUs to offer (default: detected)")
    parser.add_argument("--dashboard", action="store_true", help="join --head: start Ray's dashboard too")
    parser.add_argument("--allow-missing", action="store_true",
                        help="join: advertise hardware resources their driver does not discover here")
    parser.add_argument("--print", action="store_true", dest="print_only", help="join: print `ray start`, run nothing")
    parser.add_argument("--ray-arg", action="append", default=[], help="join: extra `ray start` argument (repeat)")
    parser.add_argument("--json", action="store_true", help="status: machine-readable output")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from robo.cluster import node

    if args.action == "status":
        return node.status(args.address, as_json=args.json)
    if not args.cell:
        raise ValueError("robo cluster join needs --cell <cell.yaml> (the robots this machine offers)")
    kw = {"port": args.port, "node_ip": args.node_ip, "num_cpus": args.num_cpus, "num_gpus": args.num_gpus,
          "dashboard": args.dashboard, "extra": args.ray_arg}
    if args.print_only:
        import shlex

        advert = node.advertise(args.cell, allow_missing=args.allow_missing)
        print(shlex.join(node.join_command(advert, address=args.address, **kw)))
        return 0
    return node.join(args.cell, address=args.address, allow_missing=args.allow_missing, **kw)
