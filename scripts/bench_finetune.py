"""Fine-tuning benchmark: the same demos and BC base, every method side by side, one table.

Methods: the BC base (no RL); residual TD3 and residual PPO on the frozen base; ReinFlow and RL-100 on
the policy itself (RL-100's offline rounds reported on their own, then with its online phase). Every RL
method runs through the one spine (robo.learn.spine.train) with its CPU or GPU profile. Per method over
the seeds: success at each budget (the last evaluation at or before it), env steps to 90%, wall clock,
and the policy's latency per chunk (batch 1, one thread); the final RL-100 policy is also distilled into
a 1-step head (robo.learn.distill), reported beside it with its own success and latency.

    python scripts/bench_finetune.py --task PandaPegInsert-v0 --seeds 0 1 2                   # 50k/100k/300k
    python scripts/bench_finetune.py --budgets 50000 --seeds 0 --methods bc reinflow rl100    # a CPU slice
    python scripts/bench_finetune.py --table-only --out runs/bench_finetune
    python scripts/bench_finetune.py --set rl100.bc_retrain_steps=2000 --set reinflow.n_envs=16   # per-method overrides

Each (method, seed) run writes `<out>/<method>__seed<k>/bench.json`; the table is built from every such
file in `--out`, so runs split over processes sharing one `--out` print one table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ORDER = ["bc", "td3", "ppo", "reinflow", "rl100-offline", "rl100", "rl100-1step"]
LABELS = {"bc": "BC base", "td3": "residual TD3", "ppo": "residual PPO", "reinflow": "ReinFlow",
          "rl100-offline": "RL-100 offline rounds", "rl100": "RL-100 + online", "rl100-1step": "RL-100 1-step head"}


def chunk_latency_ms(policy, calls: int = 30) -> float:
    """p50 ms of one predict_chunk at batch 1 (one thread) on the policy's own observation shape."""
    import torch
    from bench_policy import bench  # scripts/ is on sys.path when this script runs

    from robo.spec import STATE

    torch.set_num_threads(1)
    obs = {STATE: np.zeros((1, policy.config.n_obs_steps, policy.state_dim), np.float32)}
    return float(np.median(bench(policy, obs, calls)))


def success_at(evals: list[dict], budget: float) -> float:
    """Success of the last evaluation at or before `budget` env steps (+2%: chunked learners report a
    little past round numbers)."""
    before = [e for e in evals if e["env_steps"] <= budget * 1.02]
    return float(before[-1]["success_rate"]) if before else float("nan")


def offline_evals(run_dir: Path, cfg, base, evals: list[dict]) -> list[dict]:
    """RL-100's offline rounds as evaluations: the start, then each round's chosen policy at the env steps
    collected by its end, as the round measured it (`round_eval_episodes`; rounds without it are left out)."""
    from robo.learn.common import load_torch

    rounds = load_torch(run_dir / "checkpoint" / "state.pt")["learner"]["rounds"]
    per_round = cfg.batch_rows * (cfg.n_action_steps or base.config.n_action_steps)
    return evals[:1] + [{"env_steps": (r["round"] + 1) * per_round, "success_rate": r["measured"]}
                        for r in rounds if r.get("measured") is not None]


def steps_to(evals: list[dict], threshold: float) -> float:
    return next((float(e["env_steps"]) for e in evals if e["success_rate"] >= threshold), float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="PandaPegInsert-v0")
    ap.add_argument("--budgets", type=int, nargs="+", default=[50_000, 100_000, 300_000], help="env steps")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["bc", "td3", "ppo", "reinflow", "rl100"])
    ap.add_argument("--profile", default="auto", choices=["auto", "cpu", "gpu"])
    ap.add_argument("--eval-every", type=int, default=10_000)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--out", default="runs/bench_finetune")
    ap.add_argument("--distill-steps", type=int, default=3000, help="gradient steps of RL-100's 1-step head")
    ap.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                    help="a config override for one method (repeatable), e.g. rl100.iql_steps=1500")
    ap.add_argument("--table-only", action="store_true", help="print the table of the runs already in --out")
    args = ap.parse_args()
    out = Path(args.out)
    bad = [o for o in args.set if "=" not in o or o.split(".", 1)[0] not in args.methods]
    if bad:
        raise SystemExit(f"--set {bad[0]}: expected METHOD.KEY=VALUE with METHOD one of {args.methods}")
    if not args.table_only:
        run_all(args, out)
    print_table(out, args)


def run_all(args: argparse.Namespace, out: Path) -> None:
    from robo.learn.algo import get_algorithm, load_rl_config, pick_profile
    from robo.learn.distill import DistillConfig, distill
    from robo.learn.evaluate import evaluate
    from robo.learn.pipeline import DefaultBaseConfig, ensure_base
    from robo.learn.spine import train
    from robo.policies import load_policy

    out.mkdir(parents=True, exist_ok=True)
    ckpt, demos = ensure_base(args.task, DefaultBaseConfig())
    base = load_policy(ckpt)
    base_ms = chunk_latency_ms(base)
    budget = max(args.budgets)
    common = [f"task={args.task}", f"base={ckpt}", f"demos={demos}", f"total_env_steps={budget}",
              f"eval_every={args.eval_every}", f"eval_episodes={args.eval_episodes}", "final_videos=0"]
    for seed in args.seeds:
        for method in args.methods:
            run_dir = out / f"{method}__seed{seed}"
            if (run_dir / "bench.json").is_file():
                continue  # done in an earlier invocation
            t0 = time.monotonic()
            records = []
            if method == "bc":
                r = evaluate(args.task, base, args.eval_episodes, seed=10_000)
                records.append({"method": "bc", "evals": [{"env_steps": 0, "success_rate": r.success_rate}],
                                "latency_ms": base_ms})
            else:
                algo = get_algorithm(method)
                mine = [o.split(".", 1)[1] for o in args.set if o.split(".", 1)[0] == method]
                cfg = load_rl_config(algo, None, common + [f"seed={seed}"] + mine, profile=args.profile)
                state = train(algo, cfg, run_dir, report=False)
                evals, wall = state["evals"], time.monotonic() - t0
                latency = base_ms if algo.residual else chunk_latency_ms(algo.load_policy(run_dir))
                if method == "rl100":  # its offline rounds alone: each round's chosen policy, measured in sim
                    records.append({"method": "rl100-offline", "evals": offline_evals(run_dir, cfg, base, evals),
                                    "latency_ms": latency, "wall_clock_s": None})
                    head = distill(DistillConfig(policy=str(run_dir), out=str(run_dir / "head_1step"), seed=seed,
                                                steps=args.distill_steps))
                    h = evaluate(args.task, load_policy(run_dir / "head_1step"), args.eval_episodes, seed=10_000)
                    records.append({"method": "rl100-1step", "evals": [{"env_steps": evals[-1]["env_steps"],
                                                                        "success_rate": h.success_rate}],
                                    "latency_ms": chunk_latency_ms(load_policy(run_dir / "head_1step")),
                                    "holdout": head.get("holdout"), "wall_clock_s": head["wall_clock_s"]})
                records.append({"method": method, "evals": evals, "latency_ms": latency, "wall_clock_s": wall,
                                "profile": getattr(cfg, "profile", pick_profile(args.profile)), "overrides": mine})
            for rec in records:
                d = out / f"{rec['method']}__seed{seed}"
                d.mkdir(parents=True, exist_ok=True)
                rec = {"seed": seed, "budget": budget, "wall_clock_s": time.monotonic() - t0, **rec}
                rec["wall_clock_s"] = rec["wall_clock_s"] if rec["wall_clock_s"] is not None else float("nan")
                (d / "bench.json").write_text(json.dumps(rec, indent=2))


def print_table(out: Path, args: argparse.Namespace) -> None:
    results: dict[str, list[dict]] = {}
    for f in sorted(out.glob("*__seed*/bench.json")):
        record = json.loads(f.read_text())
        results.setdefault(record["method"], []).append(record)
    results = dict(sorted(results.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER)))
    seeds = sorted({r["seed"] for runs in results.values() for r in runs})
    budgets = sorted(args.budgets)
    print(f"\n{args.task}, seeds {seeds}, {args.eval_episodes} eval episodes per point; success at each budget "
          f"(mean ± std over seeds; '-' = not run that far)")
    head = f"{'method':<22}" + "".join(f"{f'@{b // 1000}k':>16}" for b in budgets)
    print(head + f"{'final (env steps)':>24}{'steps to 90%':>16}{'wall clock':>12}{'ms/chunk':>10}")
    for method, runs in results.items():
        cells = []
        for b in budgets:
            vals = [100 * success_at(r["evals"], b) for r in runs
                    if r["evals"] and (r["evals"][-1]["env_steps"] >= b * 0.98 or method in ("bc", "rl100-1step"))]
            vals = [v for v in vals if np.isfinite(v)]
            cells.append(f"{np.mean(vals):7.1f} ± {np.std(vals):4.1f}%" if vals else f"{'-':>14}")
        reach = [steps_to(r["evals"], 0.9) for r in runs]
        reached = [x for x in reach if np.isfinite(x)]
        reach_s = f"{np.mean(reached):.0f} ({len(reached)}/{len(runs)})" if reached else f"never (0/{len(runs)})"
        final = [100 * r["evals"][-1]["success_rate"] for r in runs if r["evals"]]
        steps = int(np.mean([r["evals"][-1]["env_steps"] for r in runs if r["evals"]]))
        final_s = f"{np.mean(final):5.1f} ± {np.std(final):4.1f}% ({steps // 1000}k)"
        walls = [r.get("wall_clock_s", float("nan")) for r in runs]
        wall_s = f"{np.mean(walls):10.0f} s" if np.all(np.isfinite(walls)) else f"{'-':>12}"
        ms = np.mean([r["latency_ms"] for r in runs])
        print(f"{LABELS.get(method, method):<22}" + "".join(f"{c:>16}" for c in cells)
              + f"{final_s:>24}{reach_s:>16}{wall_s}{ms:>10.1f}")


if __name__ == "__main__":
    main()
