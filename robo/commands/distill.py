"""`robo distill`: a 1-step consistency head from a K-step flow or 10-step DDIM policy (RL-100's recipe).

    robo distill --policy runs/bc/<run>/checkpoint                       # -> runs/bc/<run>/distilled_1step
    robo distill --policy runs/finetune/<reinflow run> --out runs/heads/peg steps=5000
    robo eval --policy runs/bc/<run>/distilled_1step --episodes 50       # an ordinary checkpoint

The student regresses the teacher's deterministic chain from the same initial noise, on the states of
the teacher's dataset (`--data` to choose another); the last episodes are held out and the match of the
executed actions is printed at the end. Config: defaults < `--config file.yaml` < `key=value` overrides.
"""

from __future__ import annotations

import argparse

HELP = "distil a K-step flow / DDIM policy into a 1-step consistency head (an ordinary checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. steps=5000")
    parser.add_argument("--policy", required=True, help="teacher checkpoint (or its run folder)")
    parser.add_argument("--data", default=None, help="dataset of states (default: the teacher's)")
    parser.add_argument("--out", default=None,
                        help="student checkpoint folder (default: <teacher run>/distilled_1step)")
    parser.add_argument("--config", default=None, help="YAML config file")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robo.config import load_config
    from robo.learn.distill import DistillConfig, distill

    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument '{bad[0]}': overrides look like key=value")
    overrides = list(args.overrides) + [f"policy={args.policy}"]
    overrides += [f"data={args.data}"] if args.data else []
    overrides += [f"out={args.out}"] if args.out else []
    cfg = load_config(DistillConfig, args.config, overrides)
    if not Path(cfg.policy).exists():
        raise FileNotFoundError(f"teacher checkpoint not found: {cfg.policy}")
    summary = distill(cfg)
    print(f"1-step head: {summary['checkpoint']} (teacher {summary['teacher']}, {summary['teacher_steps']} steps; "
          f"loss {summary['loss_last50']:.5f}, {summary['wall_clock_s']:.0f} s)")
    if "holdout" in summary:
        h = summary["holdout"]
        print(f"held-out match on {h['n_states']} states, executed actions in normalised units [-1, 1]: "
              f"mean |student - teacher| {h['mean_abs_error']:.4f} (p95 {h['p95_abs_error']:.4f}); "
              f"the teacher's own spread between two noises {h['teacher_spread']:.4f}")
    return 0
