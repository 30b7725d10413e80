"""`robo run`: deploy a policy on a robot cell (sim or real) and record every episode.

    robo run --cell configs/cells/sim_panda.yaml --policy runs/bc/<run>/checkpoint --episodes 5
    robo run --cell configs/cells/franka_lab.yaml --policy tcp://gpu-box:5555 --task "lift the cube"
    robo run --cell sim_panda --residual runs/residual/<run>          # base + residual, base from the run

See robo/cells/run.py for what is recorded and the keys.
"""

from __future__ import annotations

import argparse

HELP = "run a policy on a robot cell (sim or real) with a live status line, recording every episode"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robo.cells.run import add_arguments as add

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[1]
    add(parser)


def run(args: argparse.Namespace) -> int:
    from robo.cells.run import run as run_cell

    return run_cell(args)
