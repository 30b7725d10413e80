"""`robo train`: behaviour cloning (`robo train bc`) or residual RL fine-tuning (`robo train --residual`).

Configs: dataclass defaults < `--config file.yaml` < `key.sub=value` overrides (positional).

    robo train bc --policy diffusion --data data/peg policy.horizon=16 steps=2000
    robo train --residual                              # embedded default on PandaPegInsert-v0
    robo train --residual --base runs/bc/x/checkpoint --task PandaLift-v0 total_env_steps=20000
    robo train --residual --resume runs/residual/<run>
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
    parser.add_argument("--algo", default="td3", choices=["td3", "ppo"], help="residual learner (default: td3)")
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
    import torch

    from robo.config import load_config
    from robo.learn.pipeline import finish_report, resolve_base
    from robo.learn.residual_env import check_task

    profile = args.profile
    if profile == "auto":
        profile = "gpu" if torch.cuda.is_available() else "cpu"
    if args.algo == "ppo":
        from robo.learn import residual_ppo as algo

        cfg_cls = algo.ResidualPPOConfig
        default_yaml = None
    else:
        from robo.learn import residual_td3 as algo

        cfg_cls = algo.ResidualTD3Config
        default_yaml = _packaged_config(f"train/residual_td3_{profile}.yaml") if profile == "cpu" else None
    overrides = list(args.overrides)
    for flag, key in ((args.base, "base"), (args.task, "task")):
        if flag:
            overrides.append(f"{key}={flag}")
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"cannot resume: {run_dir / 'config.yaml'} not found")
        cfg = load_config(cfg_cls, run_dir / "config.yaml", overrides)
    else:
        base_cfg = load_config(cfg_cls, default_yaml) if default_yaml else None
        cfg = load_config(cfg_cls, args.config, overrides, base=base_cfg)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out or f"runs/residual/{cfg.task}__{args.algo}__seed{cfg.seed}__{stamp}")
        if run_dir.exists() and any(run_dir.iterdir()):  # never overwrite a run (its buffer, checkpoints)
            raise FileExistsError(f"run folder {run_dir} already exists; continue it with --resume {run_dir} "
                                  f"or pick another --out")
    check_task(cfg.task)  # before a demo is recorded or a process started
    if args.actors > 0:
        from robo.runtime.learner import launch_local, training_curve

        code = launch_local(cfg, args.actors, run_dir=run_dir, resume=bool(args.resume))
        if code != 0 or cfg.base.lower() == "none":
            return code
        base, _, ckpt, _ = resolve_base(cfg.task, cfg.base, cfg.demos, cfg.default_base)  # cached by the learner
        finish_report(run_dir, cfg.task, base, algo.load_residual_fn(run_dir), training_curve(run_dir),
                      cfg.final_eval_episodes, cfg.eval_seed, stats=None, n_action_steps=cfg.n_action_steps or None,
                      extra={"algo": args.algo, "actors": args.actors, "base_checkpoint": str(ckpt)},
                      curve_label="actors' success, last 100 episodes (with exploration)", n_videos=cfg.final_videos)
        print(f"report: {run_dir / 'report.json'}, plot: {run_dir / 'learning_curve.png'}")
        return 0
    print(f"robo train --residual: {args.algo} ({getattr(cfg, 'profile', profile)} profile) on {cfg.task}; "
          f"run folder {run_dir}", flush=True)
    base, dataset, ckpt, data_path = resolve_base(cfg.task, cfg.base, cfg.demos, cfg.default_base)
    print(f"base: {ckpt}" + (f"; demos: {data_path} ({dataset.num_episodes} episodes)" if dataset else "; no demos"),
          flush=True)
    state = algo.train(cfg, run_dir, base, dataset, resume=bool(args.resume))
    agent_fn = algo.load_residual_fn(run_dir)
    finish_report(run_dir, cfg.task, base, agent_fn, state["evals"], cfg.final_eval_episodes, cfg.eval_seed,
                  stats=None, n_action_steps=cfg.n_action_steps or None,
                  extra={"algo": args.algo, "env_steps": state["env_steps"], "episodes": state["episodes"],
                         "wall_clock_s": state.get("wall_clock_s"), "base_checkpoint": str(ckpt)},
                  n_videos=cfg.final_videos)
    print(f"report: {run_dir / 'report.json'}, plot: {run_dir / 'learning_curve.png'}")
    return 0


def _packaged_config(rel: str) -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("robo.configs").joinpath(rel)))
