"""Residual RL benchmark on PandaPegInsert-v0: same demos, same base, same seeds, side by side.

Methods: base BC (no RL); residual TD3 (ours, default); residual PPO (ours); SAC from scratch with the
demos in its buffer (50/50, no base). Prints, per method over the seeds, the env steps to reach 90%
eval success, the success at the budget (the last periodic evaluation), and each seed's evaluation at
the budget on `--final-episodes` seeds (100: 20 fixed seeds can flatter or sink a base by luck), with
its 95% Wilson interval.

    python scripts/bench_residual.py --budget 30000 --seeds 0 1 2          # CPU profile
    python scripts/bench_residual.py --budget 300000 --profile gpu         # ResFiT-sized, on a GPU

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
    ap.add_argument("--table-only", action="store_true", help="print the table of the runs already in --out")
    args = ap.parse_args()
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
                cfg = load_rl_config(algo, None, common + data[method] + [f"seed={seed}"], profile=args.profile)
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
                      "wall_clock_s": time.monotonic() - t0}
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


if __name__ == "__main__":
    main()
