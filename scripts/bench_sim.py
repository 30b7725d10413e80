"""Benchmark the robo.sim tasks: env steps/s vs raw mj_step throughput, controllers, experts.

    python scripts/bench_sim.py                                   # PandaPegInsert-v0, 500 env steps
    python scripts/bench_sim.py --task PandaStack-v0 --cameras front
    python scripts/bench_sim.py --task G1BoxLift-v0               # the G1 (C++ controller only)
    python scripts/bench_sim.py --expert-noise 0 0.25 0.5 0.75 1.0 --episodes 20   # expert success vs noise

"raw" runs the same model for the same number of physics steps (the task's ticks per env step: 50 for
the 10 Hz Panda tasks, 25 for the 20 Hz G1 task) with plain `mujoco.mj_step` and a constant control (zero
for the Panda; for the G1 the gravity torques of its start pose, so that its arms stay up instead of
collapsing onto the table), so the ratio is the cost of the controller + env wrapper.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import mujoco
import numpy as np

import robo.sim  # noqa: F401  (registers the ids)


def substeps(env: gym.Env) -> int:
    """Physics ticks per env step."""
    return int(round(1.0 / (env.unwrapped.model.opt.timestep * env.metadata["render_fps"])))


def controllers(task: str) -> list[str]:
    """The controllers a task can run: the G1 has only the C++ one."""
    if task.startswith("G1"):
        return ["cpp"]
    return ["python"] + (["cpp"] if cpp_available() else [])


def bench_env(task: str, controller: str, n_steps: int, cameras: tuple[str, ...]) -> float:
    """Env steps/s under seeded random actions (auto-reset on episode end)."""
    env = gym.make(task, controller=controller, cameras=cameras)
    env.action_space.seed(0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    rate = n_steps / (time.perf_counter() - t0)
    env.close()
    return rate


def bench_raw(task: str, n_steps: int) -> float:
    """Equivalent env steps/s of bare mj_step on the task's model (same physics steps)."""
    env = gym.make(task, controller=controllers(task)[0])
    env.reset(seed=0)
    model, data = env.unwrapped.model, env.unwrapped.data
    data.ctrl[:] = 0.0
    body = getattr(env.unwrapped, "body", None)  # the G1: hold the arms up with their gravity torques
    if body is not None:
        mujoco.mj_forward(model, data)
        for j, dof in zip(body.ctrl.robot().joints(), body.dofs):
            data.ctrl[model.actuator(j[: -len("_joint")]).id] = data.qfrc_bias[dof]
    n = n_steps * substeps(env)
    t0 = time.perf_counter()
    for _ in range(n):
        mujoco.mj_step(model, data)
    return n_steps / (time.perf_counter() - t0)


def cpp_available() -> bool:
    try:
        from robo.drivers.rt import MujocoController  # noqa: F401
    except ImportError:
        return False
    return True


def expert_sweep(task: str, noises: list[float], n_episodes: int, controller: str) -> None:
    from robo.sim.experts import make_expert

    env = gym.make(task, controller=controller)
    print(f"\nscripted expert on {task} (controller={controller}), {n_episodes} seeds each "
          f"(seeds 0..{n_episodes - 1})")
    print(f"{'noise':>6} {'success':>8} {'mean len (success)':>19}")
    for noise in noises:
        expert = make_expert(env, noise=noise, seed=0)
        wins, lengths = 0, []
        for seed in range(n_episodes):
            obs, _ = env.reset(seed=seed)
            expert.reset()
            n, done = 0, False
            while not done:
                obs, _, terminated, truncated, info = env.step(expert.act(obs))
                n, done = n + 1, terminated or truncated
            if info["success"]:
                wins += 1
                lengths.append(n)
        mean_len = f"{np.mean(lengths):.1f}" if lengths else "-"
        print(f"{noise:>6.2f} {wins / n_episodes:>8.0%} {mean_len:>19}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PandaPegInsert-v0")
    p.add_argument("--steps", type=int, default=500, help="env steps per measurement")
    p.add_argument("--cameras", nargs="*", default=[], help="e.g. front (64x64 rendering)")
    p.add_argument("--expert-noise", type=float, nargs="*", default=None, help="run the expert sweep")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--controller", default="python", help="expert sweep: python | cpp | auto")
    args = p.parse_args()

    if args.expert_noise is not None:
        expert_sweep(args.task, args.expert_noise, args.episodes, args.controller)
        return
    raw = bench_raw(args.task, args.steps)
    kinds = controllers(args.task)
    cams = tuple(args.cameras)
    n_sub = substeps(gym.make(args.task, controller=kinds[0]))
    print(f"{args.task}: {args.steps} env steps x {n_sub} physics steps, cameras={cams or 'none'}")
    print(f"{'what':<28} {'env steps/s':>12} {'physics steps/s':>16} {'vs raw':>8}")
    print(f"{'raw mj_step':<28} {raw:>12.0f} {raw * n_sub:>16.0f} {1.0:>8.2f}")
    for kind in kinds:
        rate = bench_env(args.task, kind, args.steps, cams)
        print(f"{'env, controller=' + kind:<28} {rate:>12.0f} {rate * n_sub:>16.0f} {rate / raw:>8.2f}")
    if "cpp" not in kinds:
        print("(robo.drivers.rt.MujocoController not built: C++ controller skipped)")


if __name__ == "__main__":
    main()
