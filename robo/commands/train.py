"""`robo train`: behaviour cloning (`robo train bc`) or RL fine-tuning: a residual on the frozen base
(`robo train --residual`) or the policy itself (`robo train --algo reinflow | rl100`).

Configs: dataclass defaults < `--config file.yaml` < `key.sub=value` overrides (positional). A config
may be a path, or the name of one of robo's packaged configs (`--config bc_flow`).

    robo train bc --data data/peg                          # flow-matching BC, the CPU recipe
    robo train bc --policy diffusion --data data/peg policy.horizon=16 steps=2000
    robo train bc --resume runs/bc/<run>                   # after Ctrl-C: continues from its checkpoint
    robo train --residual                                  # embedded default on PandaPegInsert-v0
    robo train --algo reinflow                             # ReinFlow on the same default base (its own copy)
    robo train --residual --base runs/bc/x/checkpoint --task PandaLift-v0 total_env_steps=20000
    robo train --residual --resume runs/residual/<run>
    robo train --residual --print-config                   # the resolved config, nothing run
    robo train --residual --cell configs/cells/sim_panda.yaml --task PandaLift-v0 --base <ckpt> n_envs=4
    robo train --residual --cell franka_lab --base <ckpt> --task "lift the cube" --actors 1

`robo train bc --help` and `robo train --residual [--algo X] --help` list every config key with its
default and meaning.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HELP = "train a BC policy (`robo train bc`) or fine-tune one with RL (`--residual`, `--algo reinflow|rl100`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robo.learn.algo import ALGORITHMS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("overrides", nargs="*", metavar="[bc] key=value",
                        help="`bc` for behaviour cloning, then config overrides, e.g. policy.horizon=16 steps=2000")
    parser.add_argument("--residual", action="store_true", help="RL fine-tuning on a frozen BC base (default: td3)")
    parser.add_argument("--algo", default=None, help=f"RL algorithm: {', '.join(ALGORITHMS)} (default: td3), "
                        "or a module path; implies RL (reinflow, rl100 fine-tune the policy itself)")
    parser.add_argument("--config", default=None, help="YAML config file (a path, or a packaged config's name)")
    parser.add_argument("--policy", default=None, choices=["diffusion", "flow"], help="BC policy type (default: flow)")
    parser.add_argument("--data", default=None, action="append",
                        help="BC: dataset folder; repeat to add more (e.g. `robo intervene` sessions: only "
                             "windows whose action chunk a person or a script acted are trained on)")
    parser.add_argument("--base", default=None, help="RL: BC checkpoint folder (default: embedded default)")
    parser.add_argument("--task", default=None,
                        help="task id (default: PandaPegInsert-v0 for RL, the dataset's for BC)")
    parser.add_argument("--out", default=None, help="run folder (default: a new one under runs/)")
    parser.add_argument("--resume", default=None, help="run folder to continue (BC or RL)")
    parser.add_argument("--actors", type=int, default=0, help="RL: N local actor processes + a learner process")
    parser.add_argument("--ray", action="store_true",
                        help="RL: place the learner and actors on a Ray cluster (pip install \"robo[ray]\"); "
                             "--actors N are then simulated actors on any CPU")
    parser.add_argument("--address", default=None, help="--ray: the cluster's host:port (default: the local one)")
    parser.add_argument("--actors-per-robot", type=int, default=0,
                        help="--ray: actors on each robot of the cluster (robo cluster join), with its cameras")
    parser.add_argument("--robots", default=None,
                        help="--ray: comma-separated robots to use (robot:<cell>/<arm>; default: all)")
    parser.add_argument("--robot-wait-s", type=float, default=0.0,
                        help="--ray: wait this long for a robot another job holds (default: refuse at once)")
    parser.add_argument("--devices", type=int, default=1,
                        help="BC: train on N devices with torch DDP (NCCL on GPUs, gloo on CPU processes)")
    parser.add_argument("--profile", default="auto", choices=["auto", "cpu", "gpu"],
                        help="RL hyper-parameter profile (auto: gpu if CUDA is available)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    from robo.cells.training import add_cell_argument

    add_cell_argument(parser, "residual: act")  # robo/cells/training.py


def help_epilog(argv: list[str]) -> str | None:
    """The config keys of what `argv` would train, appended to `--help` (see robo.cli)."""
    from robo.config import format_config_help

    if "bc" in argv:
        from robo.learn.bc import BCTrainConfig
        from robo.policies import make_config

        policy = _flag(argv, "--policy") or "flow"
        return "\n\n".join([format_config_help(BCTrainConfig, "robo train bc config keys"),
                            format_config_help(type(make_config(policy)), f"policy.* keys ({policy})")])
    if "--residual" in argv or _flag(argv, "--algo"):
        from robo.learn.algo import get_algorithm, load_rl_config, pick_profile

        algo = get_algorithm(_flag(argv, "--algo") or "td3")
        profile = pick_profile(_flag(argv, "--profile") or "auto")
        defaults = load_rl_config(algo, None, [], profile=profile)
        title = f"robo train --algo {algo.name} config keys ({profile} profile defaults)"
        return f"{algo.description}\n\n" + format_config_help(algo.config_class, title, defaults=defaults)
    return None


def _flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def run(args: argparse.Namespace) -> int:
    args.mode = None
    if args.overrides and args.overrides[0] == "bc":
        args.mode, args.overrides = "bc", args.overrides[1:]
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument '{bad[0]}': overrides look like key.sub=value")
    if args.mode == "bc":
        return _bc(args)
    if args.residual or args.algo:
        return _rl(args)
    if args.resume and (Path(args.resume) / "train_config.yaml").is_file():
        return _bc(args)  # a BC run folder
    if args.resume and (Path(args.resume) / "run.json").is_file():
        return _rl(args)  # an RL run folder: its record names the algorithm
    raise ValueError("say what to train: `robo train bc --data <dataset>` or `robo train --residual`")


def _bc(args: argparse.Namespace) -> int:
    from robo.config import build_config, read_yaml, resolve_config_path, save_config
    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.learn.residual_env import check_task
    from robo.policies import make_config

    train_over = [o for o in args.overrides if not o.startswith("policy.")]
    policy_over = [o[len("policy."):] for o in args.overrides if o.startswith("policy.")]
    if args.resume:  # the run's own configs, then the command line's overrides (e.g. more steps)
        run_dir = Path(args.resume)
        for f in ("train_config.yaml", "policy_config.yaml"):
            if not (run_dir / f).is_file():
                raise FileNotFoundError(f"cannot resume: {run_dir / f} not found (not a `robo train bc` run)")
        yaml_cfg = read_yaml(run_dir / "train_config.yaml")
        policy_yaml = read_yaml(run_dir / "policy_config.yaml")
        source = str(run_dir)
    else:
        config = resolve_config_path(args.config) if args.config else None
        yaml_cfg = read_yaml(config) if config else {}
        policy_yaml = yaml_cfg.pop("policy", {}) or {}
        source = str(config or "defaults")
    name = args.policy or policy_yaml.get("name") or "flow"
    policy_yaml["name"] = name
    if args.data:
        train_over.append(f"data={args.data[0]}")
        if len(args.data) > 1:
            train_over.append("extra_data=" + json.dumps(args.data[1:]))  # quoted: any path is a string
    if args.task:
        train_over.append(f"task={args.task}")
    from robo.learn import ddp

    rank = 0
    if ddp.is_rank():  # one of `--devices N` processes (or torchrun's): join the group, take this rank's device
        rank, world, backend = ddp.init_from_env()
        device = next((o.split("=", 1)[1] for o in reversed(train_over) if o.startswith("device=")),
                      yaml_cfg.get("device", "auto"))
        train_over.append(f"device={ddp.device_for_rank(str(device))}")
        if rank == 0:
            print(f"robo train bc: {world} ranks ({backend})", flush=True)
    cfg = build_config(BCTrainConfig, yaml_cfg, train_over, source=source)
    policy_cfg = build_config(type(make_config(name)), policy_yaml, policy_over, source=source, prefix="policy.")
    if args.print_config:
        import yaml

        from robo.config import to_dict

        print(yaml.safe_dump({**to_dict(cfg), "policy": to_dict(policy_cfg)}, sort_keys=False), end="")
        return 0
    if not cfg.data:
        raise ValueError("no dataset: pass --data <folder> (or data: in the config)")
    for data in (cfg.data, *cfg.extra_data):
        if not Path(data).exists():
            raise FileNotFoundError(f"dataset folder not found: {data}")
    if cfg.task:
        check_task(cfg.task)  # before any step: a bad id must not end up in the checkpoint
    if not args.resume:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out or cfg.out or f"runs/bc/{name}__{Path(cfg.data).name}__seed{cfg.seed}__{stamp}")
        if not ddp.is_rank() and run_dir.exists() and any(run_dir.iterdir()):  # never overwrite a checkpoint
            raise FileExistsError(f"run folder {run_dir} already exists; continue it with "
                                  f"`robo train bc --resume {run_dir}` or pick another --out")
    elif rank == 0:
        save_config(cfg, run_dir / "train_config.yaml")  # the overrides of this resume (e.g. steps=...)
    if args.devices > 1 and not ddp.is_rank():  # this process launches the ranks and waits for them
        if cfg.batch_size % args.devices:
            raise ValueError(f"batch_size={cfg.batch_size} must be a multiple of --devices {args.devices}")
        argv = ["train", "bc", *args.overrides] + (["--resume", str(run_dir)] if args.resume else
                                                   ["--out", str(run_dir)])
        for flag, value in (("--config", args.config), ("--policy", args.policy), ("--task", args.task)):
            if value:
                argv += [flag, str(value)]
        for d in args.data or []:
            argv += ["--data", d]
        return ddp.launch(argv, args.devices)
    summary = train_bc(cfg, name, policy_cfg, run_dir, resume=bool(args.resume))
    if rank != 0:
        return 0
    if summary.get("interrupted"):
        print(f"interrupted at step {summary['step']}/{cfg.steps}; checkpoint: {summary['checkpoint']}; "
              f"continue with: robo train bc --resume {run_dir}")
        return 130
    print(f"BC loss {summary['loss_first50']:.4f} (first 50 steps) -> {summary['loss_last50']:.4f} (last 50); "
          f"checkpoint: {summary['checkpoint']}")
    if "eval" in summary:
        print(f"eval success {100 * summary['eval']['success_rate']:.1f}%")
    return 0


def _rl(args: argparse.Namespace) -> int:
    from robo.config import resolve_config_path
    from robo.learn.algo import get_algorithm, load_rl_config, pick_profile
    from robo.learn.residual_env import check_task

    run_dir = Path(args.resume) if args.resume else None
    if args.algo is None and run_dir is not None:  # a resumed run is continued by the algorithm that made it
        from robo.learn.algo import read_run_record

        args.algo = read_run_record(run_dir)["algorithm"]
    algo = get_algorithm(args.algo or "td3")
    overrides = list(args.overrides)
    for flag, key in ((args.base, "base"), (args.task, "task")):
        if flag:
            overrides.append(f"{key}={flag}")
    config = resolve_config_path(args.config) if args.config else None
    if args.ray and args.profile == "auto" and not args.print_config:
        from robo.cluster.placement import cluster_profile

        args.profile = cluster_profile(args.address)  # the learner's node decides, not this one
    cfg = load_rl_config(algo, config, overrides, profile=args.profile, resume_dir=run_dir)
    if args.print_config:
        import yaml

        from robo.config import to_dict

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kind = "residual" if algo.residual else "finetune"
        run_dir = Path(args.out or f"runs/{kind}/{cfg.task}__{algo.name}__seed{cfg.seed}__{stamp}")
        if run_dir.exists() and any(run_dir.iterdir()):  # never overwrite a run (its buffer, checkpoints)
            raise FileExistsError(f"run folder {run_dir} already exists; continue it with --resume {run_dir} "
                                  f"or pick another --out")
    if args.ray:
        return _on_ray(args, algo, cfg, run_dir)
    if args.cell:
        from robo.cells.training import train_on_cell

        return train_on_cell(args, algo, cfg, run_dir)
    if getattr(args, "teleop", None):
        raise ValueError("--teleop: interventions act on a robot cell: add --cell <cell> (e.g. --cell sim_panda)")
    check_task(cfg.task)  # before a demo is recorded or a process started
    print(f"robo train: {algo.name} ({getattr(cfg, 'profile', pick_profile(args.profile))} profile) "
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


def _on_ray(args: argparse.Namespace, algo, cfg, run_dir: Path) -> int:
    """`--ray`: the learner and actors placed on a Ray cluster (robo.cluster.placement)."""
    if args.cell:
        raise ValueError("--ray takes its robots from the cluster (`robo cluster join --cell <cell>` on each robot's "
                         "machine, then --actors-per-robot K); drop --cell")
    teleop = getattr(args, "teleop", None)
    if teleop:
        from robo.cells.training import check_teleop_placement, intervention_fn

        check_teleop_placement(teleop, n_actor_processes=1)  # Ray actors are always processes of their own
        intervention_fn(args, algo)  # an on-policy algorithm is refused here, before the cluster is asked
        if not (args.actors_per_robot or args.robots):
            raise ValueError("--teleop with --ray: interventions act on the robots' cells (--actors-per-robot K)")
    from robo.cluster.placement import RayPlan, train_on_ray
    from robo.learn.residual_env import check_task

    check_task(cfg.task)
    robots = [r.strip() for r in args.robots.split(",") if r.strip()] if args.robots else None
    per_robot = args.actors_per_robot or (1 if robots else 0)  # --robots alone: one actor on each
    plan = RayPlan(address=args.address, n_sim_actors=args.actors, actors_per_robot=per_robot,
                   robots=robots, robot_wait_s=args.robot_wait_s, cameras=args.cameras, teleop=teleop)
    print(f"robo train: {algo.name} ({getattr(cfg, 'profile', args.profile)} profile) on {cfg.task} over Ray: "
          f"{args.actors} simulated actor(s), {per_robot} per robot; run folder {run_dir}", flush=True)
    code = train_on_ray(algo, cfg, run_dir, plan, resume=bool(args.resume))
    if code == 0:
        print(f"report: {run_dir / 'results.md'}, plot: {run_dir / 'learning_curve.png'}, "
              f"placement: {run_dir / 'placement.json'}")
    return code
