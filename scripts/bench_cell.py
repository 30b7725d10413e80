"""Real-time figures of a sim cell, side by side in one run: the C++ loop's lateness with and without a
policy running, and the observation age at decision / command age at execution of a local and a served
policy (`robo serve` in another process, over loopback).

    python scripts/bench_cell.py [--seconds 20] [--rounds 3] [--policy <checkpoint>] [--cell sim_panda]

Rows (each a fresh CellEnv on the cell, stepping PandaLift-v0 episodes at 10 Hz for `--seconds`):
  idle           the loop holds the arm, Python sleeps (no policy)
  local sync     a local flow-MLP policy through ChunkExecutor(sync) in this process
  served async   the same policy served by `robo serve`, through RemotePolicy + ChunkExecutor(async)
Without --policy the policy is a flow-MLP of the lift task's shape with random weights (latency does not
depend on the weights; its actions are kept tiny by its action statistics, so the arm stays put).
The machine's load changes every figure: quote the median over `--rounds` rounds and say how loaded it was.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
TASK = "PandaLift-v0"


def stand_in_policy(out: Path) -> Path:
    """A random-weight flow-MLP checkpoint of the lift task's spec (saved, so `robo serve` can load it)."""
    import gymnasium as gym
    import torch

    import robo.sim  # noqa: F401
    from robo.policies import FlowConfig, make_policy

    env = gym.make(TASK)
    spec = env.unwrapped.robo_spec
    env.close()
    ds, da = spec["observation.state"].shape[0], spec["action"].shape[0]
    stats = {"observation.state": {"min": [-1.0] * ds, "max": [1.0] * ds, "mean": [0.0] * ds, "std": [1.0] * ds},
             "action": {"min": [-1e-3] * da, "max": [1e-3] * da, "mean": [0.0] * da, "std": [1e-4] * da}}
    torch.manual_seed(0)
    policy = make_policy("flow", FlowConfig(backbone="mlp"), spec, stats)
    policy.save(out)
    return out


def measure(env, envs, seconds: float) -> dict:
    """Step `envs` (None: hold the arm, Python idle) for `seconds`; loop and latency figures."""
    if envs is None:
        env.reset(seed=0)
        ctrl = env.arm.ctrl
        ctrl.reset_stats()
        time.sleep(seconds)
    else:
        _, base = envs.reset()
        ctrl = env.arm.ctrl
        ctrl.reset_stats()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            base = envs.step(base).base
        del env.log.rows[:1]  # the first observation's age includes the start-up (first chunk, warm-up)
    s = ctrl.stats()
    lat = s["lateness_us"]
    row = {"late_p50_us": lat["p50"], "late_p99_us": lat["p99"], "late_p999_us": lat["p999"],
           "late_max_us": s["max_lateness_us"], "overruns": s["overruns"], "ticks": s["ticks"]}
    if envs is not None:
        log = env.log
        row.update(obs_p50_ms=log.latency_ms("obs_age_s", 50), obs_p99_ms=log.latency_ms("obs_age_s", 99),
                   cmd_p50_ms=log.latency_ms("cmd_age_s", 50), cmd_p99_ms=log.latency_ms("cmd_age_s", 99),
                   steps=len(log.rows), late_steps=int(sum(r["late"] for r in log.rows)))
    return row


def one_round(cell: str, policy_dir: Path, seconds: float, endpoint: str) -> dict[str, dict]:
    from robo.cells import CellEnv, CellLog
    from robo.learn.residual_env import ResidualVecEnv
    from robo.policies import load_policy
    from robo.runtime.remote_policy import RemotePolicy

    out: dict[str, dict] = {}
    for name in ("idle", "local sync", "served async"):
        env = CellEnv(cell, TASK, cameras=(), log=CellLog(), job=f"bench_cell {name}")
        envs = remote = None
        try:
            if name == "local sync":
                envs = ResidualVecEnv(TASK, load_policy(policy_dir), 1, 0, env_fn=lambda i, e=env: e)
            elif name == "served async":
                remote = RemotePolicy(endpoint)
                envs = ResidualVecEnv(TASK, remote, 1, 0, env_fn=lambda i, e=env: e, executor_mode="async")
            out[name] = measure(env, envs, seconds)
            if remote is not None:
                out[name]["rtt_p50_ms"] = remote.rtt_ms(50)
        finally:
            (envs or env).close()
            if remote is not None:
                remote.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="sim_panda", help="sim cell YAML or name (default: sim_panda)")
    ap.add_argument("--policy", default=None, help="checkpoint (default: a random-weight flow-MLP stand-in)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per row and round (default: 20)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the table shows their median (default: 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the local policy (default: 1)")
    ap.add_argument("--json", default=None, help="also write every round's figures here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_cell_"))
    os.environ.setdefault("ROBO_RUNTIME_DIR", str(tmp / "runtime"))
    policy_dir = Path(args.policy) if args.policy else stand_in_policy(tmp / "policy")
    ready = tmp / "ready"
    server = subprocess.Popen([sys.executable, "-m", "robo.cli", "serve", "--policy", str(policy_dir), "--bind",
                               "tcp://127.0.0.1:0", "--ready-file", str(ready), "--log-level", "WARNING"])
    try:
        t0 = time.monotonic()
        while not ready.exists():
            if server.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError("robo serve did not start")
            time.sleep(0.1)
        rounds = [one_round(args.cell, policy_dir, args.seconds, ready.read_text()) for _ in range(args.rounds)]
    finally:
        server.terminate()
        server.wait(30)
    load = os.getloadavg()
    print(f"sim cell {args.cell}, {TASK} at 10 Hz, C++ loop 500 Hz; {args.rounds} rounds x {args.seconds:g} s per row, "
          f"median of rounds; load average {load[0]:.1f} (2-core machines: 2 = fully busy)")
    cols = [("late_p50_us", "loop late p50 us"), ("late_p99_us", "p99 us"), ("late_p999_us", "p99.9 us"),
            ("overruns", "overruns"), ("obs_p50_ms", "obs age p50 ms"), ("obs_p99_ms", "p99 ms"),
            ("cmd_p50_ms", "cmd age p50 ms"), ("cmd_p99_ms", "p99 ms"), ("late_steps", "late steps")]
    print(f"{'':<14}" + "".join(f"{label:>16}" for _, label in cols))
    for name in rounds[0]:
        cells = []
        for key, _ in cols:
            vals = [r[name][key] for r in rounds if key in r[name]]
            cells.append(f"{np.median(vals):>16.1f}" if vals else f"{'-':>16}")
        print(f"{name:<14}" + "".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
