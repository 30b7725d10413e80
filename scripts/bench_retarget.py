"""Do retargeted Panda demos help a G1 policy? BC on G1BoxLift-v0 with and without them, at equal G1 demos.

    python scripts/bench_retarget.py                       # 10 G1 demos (noise 1) vs the same + retargeted Panda lifts
    python scripts/bench_retarget.py --g1-demos 20 --panda-demos 80 --bc-steps 3000 --eval-episodes 50

Side by side, with everything else equal (the BC recipe and seed, the evaluation seeds):
  A = N scripted G1 demos (expert noise --g1-noise, successful episodes only)
  B = A + the Panda lift demos (`robo collect --task PandaLift-v0`) retargeted onto the G1 (`robo retarget`,
      the episodes the G1 completes)
Each is trained with flow BC and evaluated on the same --eval-episodes seeds (10000...). Prints a table
and writes results.json under --out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--g1-demos", type=int, default=10)
    p.add_argument("--g1-noise", type=float, default=1.0)
    p.add_argument("--panda-demos", type=int, default=80)
    p.add_argument("--panda-noise", type=float, default=0.5)
    p.add_argument("--bc-steps", type=int, default=3000)
    p.add_argument("--bc-seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--out", default="runs/bench_retarget")
    args = p.parse_args()

    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.learn.demos import collect_scripted
    from robo.learn.evaluate import evaluate
    from robo.learn.retarget import retarget_dataset
    from robo.policies import load_policy, make_config

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    g1_only, mixed, panda = out / "g1_demos", out / "g1_plus_retargeted", out / "panda_lift"
    for d in (g1_only, mixed, panda):
        if d.exists():
            shutil.rmtree(d)
    collect_scripted("G1BoxLift-v0", g1_only, args.g1_demos, noise=args.g1_noise, seed=0)
    collect_scripted("PandaLift-v0", panda, args.panda_demos, noise=args.panda_noise, seed=0)
    shutil.copytree(g1_only, mixed)
    retargeted = retarget_dataset(panda, "G1BoxLift-v0", mixed, seed=50_000)

    rows = {}
    for name, data in (("G1 demos only", g1_only), ("G1 demos + retargeted Panda", mixed)):
        run = out / f"bc__{data.name}"
        if run.exists():
            shutil.rmtree(run)
        cfg = BCTrainConfig(data=str(data), task="G1BoxLift-v0", steps=args.bc_steps, seed=args.bc_seed,
                            torch_threads=1)
        summary = train_bc(cfg, "flow", make_config("flow", None, ["backbone=mlp"]), run)
        res = evaluate("G1BoxLift-v0", load_policy(summary["checkpoint"]), args.eval_episodes, seed=10_000)
        from robo.data import Dataset

        ds = Dataset(data)
        rows[name] = {"episodes": ds.num_episodes, "frames": ds.num_frames, "success": res.success_rate,
                      "ci95": list(res.ci95), "mean_length": res.mean_length, "checkpoint": summary["checkpoint"]}

    report = {"args": vars(args), "retarget": retargeted, "rows": rows, "seconds": round(time.monotonic() - t0)}
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nG1BoxLift-v0, {args.g1_demos} G1 demos (noise {args.g1_noise}), flow BC {args.bc_steps} steps, "
          f"{args.eval_episodes} eval episodes; retargeted: {retargeted['saved']} of {retargeted['source_episodes']} "
          f"Panda lifts ({100 * retargeted['target_success_rate']:.0f}% completed by the G1)")
    print(f"{'training data':<30} {'episodes':>8} {'success':>8} {'95% CI':>16} {'mean len':>9}")
    for name, r in rows.items():
        lo, hi = r["ci95"]
        print(f"{name:<30} {r['episodes']:>8} {100 * r['success']:>7.1f}% [{100 * lo:5.1f}, {100 * hi:5.1f}] "
              f"{r['mean_length']:>9.1f}")


if __name__ == "__main__":
    main()
