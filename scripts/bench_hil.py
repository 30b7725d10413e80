"""Human-in-the-loop data at equal operator time: more full demos vs HG-DAgger rounds vs RaC rounds.

    python scripts/bench_hil.py                       # PandaPegInsert-v0, 120 s of operator time per arm
    python scripts/bench_hil.py --task PandaLift-v0 --budget-s 60 --eval-episodes 50

One weak base (flow BC on a few noisy scripted demos) is improved three ways, each spending the same
operator time (the scripted operator stands in for a person; its time in control counts like a
person's, and a full demo costs its whole length):

  (a) demos      more scripted full demonstrations, then retraining on all of them
  (b) hg-dagger  rounds of HG-DAgger sessions (take over, correct, hand back), retraining after each
  (c) rac        rounds of RaC sessions (take over, recover, correct; the episode ends), retraining after each

Every arm retrains from the base with the same BC settings (robo.learn.bc: `init`, `extra_data`) and is
evaluated on the same fixed seeds. Printed: success before / after, operator minutes, success gained
per operator minute, and the ratio of each session arm's gain per minute to the demos arm's. The
sessions run on the fast-path task env; `robo intervene --cell` runs the same session loop on a cell.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="PandaPegInsert-v0")
    p.add_argument("--base-demos", type=int, default=20, help="demos the weak base is trained on")
    p.add_argument("--demo-noise", type=float, default=0.5, help="expert noise of the base's demos")
    p.add_argument("--base-steps", type=int, default=1500, help="BC steps of the base")
    p.add_argument("--budget-s", type=float, default=120.0, help="operator seconds per arm")
    p.add_argument("--episodes", type=int, default=10, help="session episodes per round")
    p.add_argument("--retrain-steps", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--out", default="runs/bench_hil")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from robo.data import Dataset, DatasetWriter
    from robo.hil import ScriptedOperator
    from robo.hil.session import run_session
    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.learn.demos import collect_scripted
    from robo.learn.evaluate import evaluate
    from robo.learn.residual_env import make_env
    from robo.policies import load_policy, make_config

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    collect_scripted(args.task, out / "base_demos", episodes=args.base_demos, noise=args.demo_noise, seed=args.seed)
    base_cfg = BCTrainConfig(data=str(out / "base_demos"), steps=args.base_steps, batch_size=64, torch_threads=1,
                             seed=args.seed, checkpoint_every=10**9)
    base = train_bc(base_cfg, "flow", make_config("flow", None, ["backbone=mlp", "mlp_dims=[256,256,256]"]),
                    out / "base")["checkpoint"]
    seeds = 10_000 + args.seed

    def success(ckpt: str) -> float:
        return float(evaluate(args.task, load_policy(ckpt), n_episodes=args.eval_episodes, seed=seeds).success_rate)

    def retrain(name: str, extra: list[str], r: int, init: str) -> str:
        cfg = BCTrainConfig(data=str(out / "base_demos"), extra_data=tuple(extra), init=init,
                            steps=args.retrain_steps, batch_size=64, warmup_steps=50, lr=3e-4, seed=args.seed + r,
                            torch_threads=1, checkpoint_every=10**9)
        return train_bc(cfg, "flow", None, out / name / f"bc-{r}")["checkpoint"]

    before = success(base)
    rows = []

    # (a) full demos until the budget is spent: each costs its length at the task's rate
    env = make_env(args.task)
    fps = float(env.metadata.get("render_fps", 10))
    env.close()
    n, spent = 0, 0.0
    while spent < args.budget_s:
        collect_scripted(args.task, out / "demos" / "more", episodes=1, noise=0.0, seed=args.seed + 777 + 10 * n)
        n += 1
        spent = int(Dataset(out / "demos" / "more").num_frames) / fps
    after = success(retrain("demos", [str(out / "demos" / "more")], 0, base))
    rows.append(("demos", f"{n} full demos", spent, after))

    # (b), (c) rounds of sessions until the budget is spent, retraining after each round
    for strategy in ("hg-dagger", "rac"):
        current, sessions, spent, r = base, [], 0.0, 0
        while spent < args.budget_s:
            env = make_env(args.task)
            data = out / strategy / f"round-{r}"
            writer = DatasetWriter(data, env.unwrapped.robo_spec, fps=fps, task=env.unwrapped.task_description)
            try:
                report = run_session(env, load_policy(current), ScriptedOperator(env, seed=args.seed + r),
                                     strategy=strategy, episodes=args.episodes, writer=writer,
                                     seed=args.seed + 100 * (r + 1))
            finally:
                writer.close()
            spent += report["operator_s"]
            if Dataset(data).num_episodes:
                sessions.append(str(data))
            current = retrain(strategy, sessions, r, current)
            r += 1
        rows.append((strategy, f"{r} round(s) x {args.episodes} episodes", spent, success(current)))

    print(f"\n{args.task}: base {100 * before:.0f}% ({args.base_demos} demos, noise {args.demo_noise}); "
          f"{args.eval_episodes} eval episodes on seeds {seeds}..; {time.monotonic() - t0:.0f} s wall clock\n")
    print("| arm | data | operator min | success | gain / operator min | vs demos |")
    print("|---|---|---|---|---|---|")
    per_min = {name: (after - before) / max(spent / 60, 1e-9) for name, _, spent, after in rows}
    for name, what, spent, after in rows:
        ratio = per_min[name] / per_min["demos"] if per_min["demos"] > 0 else float("nan")
        print(f"| {name} | {what} | {spent / 60:.2f} | {100 * before:.0f}% -> {100 * after:.0f}% | "
              f"{100 * per_min[name]:+.1f} pts | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
