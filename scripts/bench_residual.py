"""Residual RL benchmark on PandaPegInsert-v0: same demos, same base, same seeds, side by side.

Methods: base BC (no RL); residual TD3 (ours, default); residual PPO (ours); SAC from scratch with the
demos in its buffer (50/50, no base). Prints, per method over the seeds, the env steps to reach 90%
eval success, the success at the budget (the last periodic evaluation), and each seed's evaluation at
the budget on `--final-episodes` seeds (100: 20 fixed seeds can flatter or sink a base by luck), with
its 95% Wilson interval.

    python scripts/bench_residual.py --budget 30000 --seeds 0 1 2          # CPU profile
    python scripts/bench_residual.py --budget 300000 --profile gpu         # ResFiT-sized, on a GPU
    python scripts/bench_residual.py --throughput                          # env steps/s, side by side

`--throughput` measures env steps/s of the residual TD3 loop (CPU profile, evaluations off) once its
actor trains, side by side in one run: the bare task env, the envs with the base and the explorer (no
learner), the one-process loop serial and with its updates overlapping the env steps, at 1 and 0.5
actor updates per transition, and a learner process + 1 actor process (`--actors 1`).

Each (method, seed) run writes `<out>/<method>__seed<k>/bench.json`; the table is built from every such
file in `--out`, so runs split over processes sharing one `--out` (e.g. `--methods td3` in one,
`--methods bc ppo sac` in another) print one table (`--table-only` prints it without running anything).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def steps_to(evals: list[dict], threshold: float) -> float:
    for e in evals:
        if e["success_rate"] >= threshold:
            return float(e["env_steps"])
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="PandaPegInsert-v0")
    ap.add_argument("--budget", type=int, default=30_000, help="env steps per RL run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["bc", "td3", "ppo", "sac"])
    ap.add_argument("--profile", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--eval-every", type=int, default=5_000)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--final-episodes", type=int, default=100,
                    help="episodes of the evaluation at the budget (seeds 10000...; 0: none). The periodic "
                         "20-episode evaluations can flatter or sink a base by luck")
    ap.add_argument("--out", default="runs/bench_residual")
    ap.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                    help="a config override for one method (repeatable), e.g. ppo.kl_to_base=0")
    ap.add_argument("--table-only", action="store_true", help="print the table of the runs already in --out")
    ap.add_argument("--throughput", action="store_true", help="measure env steps/s of the loop's placements")
    ap.add_argument("--throughput-steps", type=int, default=10_000,
                    help="--throughput: env steps per loop run (the rate is taken after the critic warm-up)")
    args = ap.parse_args()
    bad = [o for o in args.set if "=" not in o or o.split(".", 1)[0] not in args.methods]
    if bad:
        raise SystemExit(f"--set {bad[0]}: expected METHOD.KEY=VALUE with METHOD one of {args.methods}")
    if args.throughput:
        throughput(args)
        return
    if args.table_only:
        print_table(Path(args.out), args)
        return

    from robo.learn.algo import get_algorithm, load_rl_config, load_run
    from robo.learn.evaluate import evaluate
    from robo.learn.pipeline import DefaultBaseConfig, ensure_base
    from robo.learn.spine import train
    from robo.policies import load_policy

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, demos = ensure_base(args.task, DefaultBaseConfig())
    base = load_policy(ckpt)
    common = [f"task={args.task}", f"total_env_steps={args.budget}", f"eval_every={args.eval_every}",
              f"eval_episodes={args.eval_episodes}", "final_videos=0"]
    # every RL method: the same base and demos, through the one spine (robo.learn.spine.train)
    data = {"td3": [f"base={ckpt}", f"demos={demos}"], "ppo": [f"base={ckpt}"], "sac": ["base=none", f"demos={demos}"]}
    overrides = {m: [o.split(".", 1)[1] for o in args.set if o.split(".", 1)[0] == m] for m in args.methods}
    for seed in args.seeds:
        for method in args.methods:
            t0 = time.monotonic()
            run_dir = out / f"{method}__seed{seed}"
            final = None
            if method == "bc":
                r = evaluate(args.task, base, args.eval_episodes, seed=10_000)
                evals = [{"env_steps": 0, "success_rate": r.success_rate}]
                if args.final_episodes:
                    final = evaluate(args.task, base, args.final_episodes, seed=10_000)
            elif method in data:
                algo = get_algorithm(method)
                cfg = load_rl_config(algo, None, common + data[method] + [f"seed={seed}"] + overrides[method],
                                     profile=args.profile)
                evals = train(algo, cfg, run_dir, report=False)["evals"]
                if args.final_episodes:  # the run as `robo eval --residual` sees it
                    run = load_run(run_dir)
                    policy = base if algo.residual else run.policy
                    final = evaluate(args.task, policy, args.final_episodes, seed=10_000, residual=run.residual,
                                     stats=run.stats if run.policy is None else None)
            else:
                raise SystemExit(f"unknown method {method}")
            run_dir.mkdir(parents=True, exist_ok=True)
            record = {"method": method, "seed": seed, "budget": args.budget, "evals": evals,
                      "wall_clock_s": time.monotonic() - t0,
                      "overrides": overrides[method]}
            if final is not None:
                record["final"] = {"episodes": final.n_episodes, "success_rate": final.success_rate,
                                   "ci95": list(final.ci95)}
            (run_dir / "bench.json").write_text(json.dumps(record, indent=2))
    print_table(out, args)


def print_table(out: Path, args: argparse.Namespace) -> None:
    results: dict[str, list[dict]] = {}
    for f in sorted(out.glob("*__seed*/bench.json")):
        record = json.loads(f.read_text())
        results.setdefault(record["method"], []).append(record)
    order = ["bc", "td3", "ppo", "sac"]
    results = dict(sorted(results.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    seeds = sorted({r["seed"] for runs in results.values() for r in runs})
    budgets = sorted({r["budget"] for runs in results.values() for r in runs})
    print(f"\n{args.task}, budget {'/'.join(map(str, budgets))} env steps, seeds {seeds}, "
          f"{args.eval_episodes} eval episodes, profile {args.profile}")
    finals = sorted({r["final"]["episodes"] for runs in results.values() for r in runs if "final" in r})
    final_head = f"final, {'/'.join(map(str, finals))} seeds" if finals else ""
    print(f"{'method':<14} {'steps to 90%':>16} {'success at budget':>20} {'wall clock':>12} {final_head:>36}")
    for method, runs in results.items():
        reach = [steps_to(r["evals"], 0.9) for r in runs]
        at_budget = [100 * r["evals"][-1]["success_rate"] for r in runs]
        reached = [x for x in reach if np.isfinite(x)]
        reach_s = f"{np.mean(reached):.0f} ({len(reached)}/{len(runs)})" if reached else f"never (0/{len(runs)})"
        wall = np.mean([r["wall_clock_s"] for r in runs])
        # each seed's evaluation at the budget on the final seeds, with its 95% Wilson interval
        final_s = " ".join(f"{100 * r['final']['success_rate']:.0f}% [{100 * r['final']['ci95'][0]:.0f}, "
                           f"{100 * r['final']['ci95'][1]:.0f}]" for r in runs if "final" in r)
        print(f"{method:<14} {reach_s:>16} {np.mean(at_budget):>13.1f} ± {np.std(at_budget):4.1f}% {wall:>10.0f} s"
              f"   {final_s}")


def steady_rate(run_dir: Path, after: int, utd: float) -> float:
    """Env steps/s a run learns from between its logs after `after` env steps: the stored rows' rate or,
    when actors run ahead of the learner (up to `max_actor_lead` rows), the updates' rate / utd."""
    lines = [line.split(",") for line in (run_dir / "scalars.csv").read_text().splitlines()[1:]]
    rates = {tag: [float(v) for step, t, v in lines if t == tag and int(step) > after]
             for tag in ("charts/steps_per_s", "charts/updates_per_s")}
    if not all(rates.values()):
        raise SystemExit(f"{run_dir}: no rates logged after {after} env steps (raise --throughput-steps)")
    return min(float(np.mean(rates["charts/steps_per_s"])), float(np.mean(rates["charts/updates_per_s"])) / utd)


def throughput(args: argparse.Namespace) -> None:
    import shutil
    import subprocess
    import sys

    from robo.learn.algo import get_algorithm, load_rl_config, module_weights
    from robo.learn.pipeline import DefaultBaseConfig, ensure_base
    from robo.learn.residual_env import make_env
    from robo.learn.spine import Collector, train
    from robo.policies import load_policy

    out = Path(args.out) / "throughput"
    out.mkdir(parents=True, exist_ok=True)
    ckpt, demos = ensure_base(args.task, DefaultBaseConfig())
    algo = get_algorithm("td3")
    base_args = [f"task={args.task}", f"base={ckpt}", f"demos={demos}", "eval_every=1000000", "eval_episodes=1",
                 "checkpoint_every=1000000", "final_eval_episodes=1", "final_videos=0"]
    cfg = load_rl_config(algo, None, base_args, profile="cpu")
    after = cfg.learning_starts + cfg.critic_warmup_updates + 500  # the actor trains from here on
    n = args.throughput_steps
    rows: list[tuple[str, float]] = []

    env = make_env(args.task)  # the bare task: physics + the C++ controller, a zero action
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    t0 = time.perf_counter()
    for i in range(2000):
        if any(env.step(zero)[2:4]):
            env.reset(seed=i)
    rows.append(("task env alone (zero action)", 2000 / (time.perf_counter() - t0)))
    env.close()

    collector = Collector(algo, cfg, load_policy(ckpt), seed=0)  # base + explorer, no learner
    weights = module_weights(collector.explorer.actor, "actor.")
    collector.load_weights({**weights, "learning_started": np.array(True)})
    t0 = time.perf_counter()
    for _ in range(2000):
        collector.step()
    rows.append(("envs + base + explorer (no learner)", 2000 / (time.perf_counter() - t0)))
    collector.close()

    for label, extra in (("one process, serial, 1 actor update/step", ["overlap_updates=false",
                                                                       "actor_updates_per_step=1"]),
                         ("one process, overlapped, 1 actor update/step", ["actor_updates_per_step=1"]),
                         ("one process, serial, 0.5 actor update/step", ["overlap_updates=false",
                                                                          "actor_updates_per_step=0.5"]),
                         ("one process, overlapped, 0.5 (default)", [])):
        run_dir = out / f"loop{len(rows)}"
        shutil.rmtree(run_dir, ignore_errors=True)
        cfg = load_rl_config(algo, None, base_args + [f"total_env_steps={n}", *extra], profile="cpu")
        train(algo, cfg, run_dir, report=False)
        rows.append((label, steady_rate(run_dir, after, cfg.utd)))
    run_dir = out / "actors_1"
    shutil.rmtree(run_dir, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "robo.cli", "train", "--residual", "--actors", "1", "--out", str(run_dir),
                    *base_args, f"total_env_steps={n}"], check=True)
    rows.append(("learner process + 1 actor process, 0.5", steady_rate(run_dir, after, cfg.utd)))

    ref = rows[2][1]  # the serial loop at 1 actor update per transition: the loop as it was
    print(f"\n{args.task}, residual TD3 CPU profile, env steps/s after {after} steps (the actor training), "
          f"{n} steps per loop run")
    print(f"{'placement':<48} {'env steps/s':>12} {'vs serial, 1':>14}")
    for label, rate in rows:
        print(f"{label:<48} {rate:>12.1f} {rate / ref:>13.2f}x")


if __name__ == "__main__":
    main()
