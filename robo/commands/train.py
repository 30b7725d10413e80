"""`robo train`: behaviour cloning (`robo train bc`) or residual RL fine-tuning (`robo train --residual`).

Configs: dataclass defaults < `--config file.yaml` < `key.sub=value` overrides (positional).

    robo train bc --policy diffusion --data data/peg policy.horizon=16 steps=2000
    robo train --residual                              # embedded default on PandaPegInsert-v0
    robo train --residual --base runs/bc/x/checkpoint --task PandaLift-v0 total_env_steps=20000
    robo train --residual --resume runs/residual/<run>
    robo train --residual --cell configs/cells/sim_panda.yaml --task PandaLift-v0 --base <ckpt> n_envs=4
    robo train --residual --cell franka_lab --base <ckpt> --task "lift the cube" --actors 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "train a BC policy (`robo train bc`) or fine-tune one with residual RL (`robo train --residual`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("overrides", nargs="*", metavar="[bc] key=value",
                        help="`bc` for behaviour cloning, then config overrides, e.g. policy.horizon=16 steps=2000")
    parser.add_argument("--residual", action="store_true", help="residual RL on a frozen BC base")
    parser.add_argument("--algo", default="td3", help="RL algorithm: td3 (default), ppo, sac, or a module path")
    parser.add_argument("--config", default=None, help="YAML config file")
    parser.add_argument("--policy", default=None, choices=["diffusion", "flow"], help="BC policy type")
    parser.add_argument("--data", default=None, help="BC: dataset folder")
    parser.add_argument("--base", default=None, help="residual: BC checkpoint folder (default: embedded default)")
    parser.add_argument("--task", default=None, help="task id (default: PandaPegInsert-v0)")
    parser.add_argument("--out", default=None, help="run folder")
    parser.add_argument("--resume", default=None, help="residual: run folder to resume")
    parser.add_argument("--actors", type=int, default=0, help="residual: N local actor processes + a learner")
    parser.add_argument("--profile", default="auto", choices=["auto", "cpu", "gpu"],
                        help="residual hyper-parameter profile (auto: gpu if CUDA is available)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    from robo.cells.training import add_cell_argument

    add_cell_argument(parser, "residual: act")  # robo/cells/training.py


def run(args: argparse.Namespace) -> int:
    args.mode = None
    if args.overrides and args.overrides[0] == "bc":
        args.mode, args.overrides = "bc", args.overrides[1:]
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument '{bad[0]}': overrides look like key.sub=value")
    if args.residual:
        return _residual(args)
    if args.mode == "bc":
        return _bc(args)
    raise ValueError("say what to train: `robo train bc --data <dataset>` or `robo train --residual`")


def _bc(args: argparse.Namespace) -> int:
    from robo.config import build_config, read_yaml
    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.policies import make_config

    train_over = [o for o in args.overrides if not o.startswith("policy.")]
    policy_over = [o[len("policy."):] for o in args.overrides if o.startswith("policy.")]
    yaml_cfg = read_yaml(args.config) if args.config else {}
    policy_yaml = yaml_cfg.pop("policy", {}) or {}
    name = args.policy or policy_yaml.get("name") or "diffusion"
    policy_yaml["name"] = name
    if args.data:
        train_over.append(f"data={args.data}")
    if args.task:
        train_over.append(f"task={args.task}")
    source = args.config or "defaults"
    cfg = build_config(BCTrainConfig, yaml_cfg, train_over, source=source)
    policy_cfg = build_config(type(make_config(name)), policy_yaml, policy_over, source=source, prefix="policy.")
    if not cfg.data:
        raise ValueError("no dataset: pass --data <folder> (or data: in the config)")
    if not Path(cfg.data).exists():
        raise FileNotFoundError(f"dataset folder not found: {cfg.data}")
    run_dir = Path(args.out or cfg.out or f"runs/bc/{name}__{Path(cfg.data).name}__seed{cfg.seed}")
    if run_dir.exists() and any(run_dir.iterdir()):  # never overwrite a trained checkpoint
        raise FileExistsError(f"run folder {run_dir} already exists; pick another --out")
    summary = train_bc(cfg, name, policy_cfg, run_dir)
    print(f"BC loss {summary['loss_first50']:.4f} (first 50 steps) -> {summary['loss_last50']:.4f} (last 50); "
          f"checkpoint: {summary['checkpoint']}")
    if "eval" in summary:
        print(f"eval success {100 * summary['eval']['success_rate']:.1f}%")
    return 0


def _residual(args: argparse.Namespace) -> int:
    from robo.learn.algo import get_algorithm, load_rl_config, pick_profile
    from robo.learn.residual_env import check_task

    algo = get_algorithm(args.algo)
    overrides = list(args.overrides)
    for flag, key in ((args.base, "base"), (args.task, "task")):
        if flag:
            overrides.append(f"{key}={flag}")
    run_dir = Path(args.resume) if args.resume else None
    cfg = load_rl_config(algo, args.config, overrides, profile=args.profile, resume_dir=run_dir)
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out or f"runs/residual/{cfg.task}__{algo.name}__seed{cfg.seed}__{stamp}")
        if run_dir.exists() and any(run_dir.iterdir()):  # never overwrite a run (its buffer, checkpoints)
            raise FileExistsError(f"run folder {run_dir} already exists; continue it with --resume {run_dir} "
                                  f"or pick another --out")
    if args.cell:
        from robo.cells.training import train_on_cell

        return train_on_cell(args, algo, cfg, run_dir)
    check_task(cfg.task)  # before a demo is recorded or a process started
    print(f"robo train --residual: {algo.name} ({getattr(cfg, 'profile', pick_profile(args.profile))} profile) "
          f"on {cfg.task}; run folder {run_dir}", flush=True)
    if args.actors > 0:
        from robo.config import save_config
        from robo.runtime.launch import launch_local

        run_dir.parent.mkdir(parents=True, exist_ok=True)
        resolved = run_dir.parent / f".{run_dir.name}.config.yaml"  # the learner saves it in the run
        save_config(cfg, resolved)
        try:
            code = launch_local(algo.name, resolved, args.actors, run_dir, resume=bool(args.resume),
                                log_level="WARNING")
        finally:
            resolved.unlink(missing_ok=True)
        if code == 0:
            print(f"report: {run_dir / 'results.md'}, plot: {run_dir / 'learning_curve.png'}")
        return code
    from robo.learn.spine import train

    train(algo, cfg, run_dir, resume=bool(args.resume))
    print(f"report: {run_dir / 'results.md'}, plot: {run_dir / 'learning_curve.png'}")
    return 0
