"""`robo intervene`: human-in-the-loop sessions on a robot cell (RaC recovery-and-correction, HG-DAgger).

    robo intervene --cell sim_panda --policy runs/bc/<run>/checkpoint --teleop keyboard --episodes 10
    robo intervene --cell sim_panda --policy <ckpt> --teleop scripted --rounds 3 --demos data/lift

See robo/hil/session.py for what is recorded, the phases and the keys.
"""

from __future__ import annotations

import argparse

HELP = "human-in-the-loop sessions on a cell (RaC, HG-DAgger): take over, recover, correct; retrain"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robo.hil.session import add_arguments as add

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[1]
    add(parser)


def run(args: argparse.Namespace) -> int:
    from robo.hil.session import intervene

    return intervene(args)
