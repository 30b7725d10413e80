"""Residual RL on a cell through the spine: `robo train --residual --cell`, `robo actor --cell`, `robo learner --cell`.

The spine (robo.learn.spine) runs unchanged; only where its envs come from changes. The actor side
(`Collector`) steps `CellEnv`s built by `cell_env_fn` (on a sim cell, N copies at once, each in real
time; on a real cell, one), so the residual acts on the cell in real time while the learner updates,
in this process or another. The learner side needs no robot:

- a sim cell runs a Gymnasium task, so the learner's view and its fixed-seed evaluations use that task
  in the fast path (the same scene and rules: a cheap learning curve that never occupies the cell);
- a real cell has no simulated twin: the learner's view is the cell's `CellEnv`, built but never
  reset (specs only, no hardware), and there are no fixed-seed evaluations; the curve is the
  actors' episodes, and `robo eval --cell --residual <run>` measures the result on the robot.

Rewards and episode ends come from the cell: the task's success on a sim cell, the operator's marks (or
a success predicate) on a real one, the reset procedure between episodes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robo.hal.cell import Cell


def add_cell_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--cell", default=None, help=f"{what} on a robot cell (YAML or name under configs/cells)")
    parser.add_argument("--cameras", default=None,
                        help="--cell: cell cameras to observe (default: those the base's observation needs)")
    parser.add_argument("--teleop", default=None,
                        help="--cell: an operator may take over during training (HIL-SERL style): a teleop "
                             "device of the cell, or `scripted` on a sim cell (robo.hil)")


def is_sim_cell(cell: str | Path) -> bool:
    """True when the cell's arms are simulated (a sim cell runs a Gymnasium task; the learner evaluates it)."""
    loaded = Cell.load(cell)
    arms = loaded.by_kind("arm")
    return bool(arms) and all(getattr(a, "simulated", False) for a in arms.values())


def rl_env_fn(cell: str | Path, task: str, base: Any, cameras: str | None = None, *,
              session_keys: bool = False, first_instance: int = 0) -> Any:
    """The spine's env factory for a cell: copy `first_instance + i` of the cell, observing the cameras the
    base needs. `session_keys`: an intervention session owns pause (and the teleop keyboard's space): the
    cell keeps go / success / failure / stop. `first_instance`: k actors on one sim cell open copies of it."""
    from robo.cells import Operator, cell_env_fn
    from robo.cells.evaluate import _policy_cameras
    from robo.cells.operator import KEY_EVENTS
    from robo.teleop.terminal import TerminalKeys

    cams = _policy_cameras(base) if cameras is None else [c for c in cameras.split(",") if c]
    keymap = {k: e for k, e in KEY_EVENTS.items() if e not in ("pause", "resume")} if session_keys else None
    operator = Operator(TerminalKeys.stdin(), keymap=keymap)  # real cells: go / success / failure / pause / stop
    make = cell_env_fn(cell, task, cameras=cams, operator=operator, job=f"robo train --cell {task}")
    return make if first_instance == 0 else (lambda i: make(first_instance + i))


def train_on_cell(args: argparse.Namespace, algo: Any, cfg: Any, run_dir: Path) -> int:
    """`robo train --residual --cell <cell>` in one process, or with `--actors N` as a learner process plus N
    actor processes acting on the cell (`launch_local`)."""
    sim = is_sim_cell(args.cell)
    if sim:
        from robo.learn.residual_env import check_task

        check_task(cfg.task)  # the task the sim cell runs, and the learner's fast-path twin
    print(f"robo train --residual --cell {args.cell}: {algo.name} on {cfg.task} ({'sim' if sim else 'real'} cell, "
          f"{cfg.n_envs} env(s)); run folder {run_dir}", flush=True)
    cell_flags = ["--cell", str(args.cell)] + (["--cameras", args.cameras] if args.cameras else [])
    teleop = getattr(args, "teleop", None)
    check_teleop_placement(teleop, args.actors)
    if teleop and args.actors > 0:
        intervention_fn(args, algo)  # refuses an on-policy algorithm here, before any process starts
        cell_flags += ["--teleop", teleop]  # the actor processes gate their cell envs
    if args.actors > 0:
        from robo.config import save_config
        from robo.runtime.launch import launch_local

        run_dir.parent.mkdir(parents=True, exist_ok=True)
        resolved = run_dir.parent / f".{run_dir.name}.config.yaml"
        save_config(cfg, resolved)
        try:
            return launch_local(algo.name, resolved, args.actors, run_dir, resume=bool(args.resume),
                                log_level="WARNING", learner_args=cell_flags, actor_args=cell_flags)
        finally:
            resolved.unlink(missing_ok=True)
    from robo.learn.spine import resolve_base_for, train

    base, _, _ = resolve_base_for(cfg)
    env_fn = rl_env_fn(args.cell, cfg.task, base, args.cameras, session_keys=bool(teleop))
    gates = intervention_fn(args, algo) if teleop else None
    train(algo, cfg, run_dir, resume=bool(args.resume), env_fn=env_fn, view_env_fn=None if sim else env_fn,
          intervention_fn=gates)
    print(f"run folder: {run_dir}" + (f"; report {run_dir / 'results.md'}" if sim else
                                      f"; evaluate it on the cell: robo eval --cell {args.cell} --residual {run_dir}"))
    return 0


def learner_setup_kwargs(args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """`prepare()` keywords of `robo learner --cell`: nothing for a sim cell (its task is the twin), the
    cell's view and no evaluations for a real one."""
    if not getattr(args, "cell", None) or is_sim_cell(args.cell):
        return {}
    from robo.learn.spine import resolve_base_for

    base, _, _ = resolve_base_for(cfg)
    return {"env_fn": rl_env_fn(args.cell, cfg.task, base, getattr(args, "cameras", None)), "evaluates": False}


def check_teleop_placement(teleop: str | None, n_actor_processes: int) -> None:
    """Interventions in actor processes: the scripted operator runs anywhere; a person's device and keys need
    the terminal they sit at, which an actor process started for them does not have."""
    if teleop and teleop != "scripted" and n_actor_processes > 0:
        raise ValueError(f"--teleop {teleop} with actor processes: the operator's keys are at this terminal; "
                         "train embedded (no --actors), or run `robo actor --cell <cell> --teleop "
                         f"{teleop} ...` at the robot's terminal against `robo learner`")


def intervention_fn(args: argparse.Namespace, algo: Any) -> Any:
    """`--teleop <device | scripted>`: each cell env's gate (hg-dagger: control returns to the policy)."""
    if not getattr(algo, "accepts_interventions", False):
        raise ValueError(f"--teleop: {algo.name} learns on-policy and cannot learn from a person's actions; "
                         "use an off-policy algorithm (td3, sac)")
    from robo.hil import Intervention
    from robo.hil.session import _operator
    from robo.teleop.terminal import TerminalKeys

    keys = TerminalKeys.stdin() if args.teleop != "scripted" else None

    def make(env: Any) -> Any:
        operator = _operator(args, env, keys)
        return Intervention(operator, "hg-dagger", control_hz=float(env.metadata.get("render_fps", 10)))

    return make
