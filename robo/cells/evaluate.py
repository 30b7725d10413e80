"""`robo eval --cell <cell>`: the same evaluation as `robo eval` on a task, run on a cell.

`robo.learn.evaluate.evaluate` itself runs it, on the Gymnasium id `robo/Cell-v0` (a `CellEnv`): the
episodes seeded `seed..seed+n-1` (on a sim cell the same initial states as the fast path's), success
with a 95% Wilson interval, lengths, videos of the first episodes from the cell's cameras, plus the
cell's latencies (observation age at decision, command age at execution) and the controller's own
final state. A sim cell may run `--parallel N` copies at once (each in real time, its own C++ loop);
a real cell runs one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_cell_arguments(parser: argparse.ArgumentParser) -> None:
    """The `robo eval` flags for a cell (the rest are robo eval's own)."""
    parser.add_argument("--cell", default=None,
                        help="evaluate on a robot cell (YAML or name under configs/cells) instead of the fast path")
    parser.add_argument("--parallel", type=int, default=1,
                        help="--cell: copies of a sim cell run at once (default: 1; a real cell runs one)")
    parser.add_argument("--executor", default="auto", choices=("auto", "sync", "async"),
                        help="--cell: chunk execution; auto: async for a served policy, else sync")
    from robo.cells.run import add_torch_threads_argument

    add_torch_threads_argument(parser)


def run_cell_eval(args: argparse.Namespace) -> int:
    """`robo eval --cell ...`; returns the exit code."""
    from robo.cells import CELL_ENV_ID, CellLog, Operator
    from robo.cells.run import executor_mode, load_policies
    from robo.commands.eval import report_folder
    from robo.learn.evaluate import evaluate, plot_success, write_report
    from robo.teleop.terminal import TerminalKeys

    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} must be >= 1")
    if args.parallel < 1:
        raise ValueError(f"--parallel={args.parallel} must be >= 1")
    if args.out and Path(args.out).exists() and (not Path(args.out).is_dir() or any(Path(args.out).iterdir())):
        raise FileExistsError(f"--out {args.out} already exists; pick a new folder (or leave --out out)")
    policy, task, rl_run, remote = load_policies(args)
    mode = executor_mode(args, remote)
    if mode == "async" and args.parallel > 1:
        raise ValueError("--executor async runs one env: use --parallel 1")
    keys = TerminalKeys.stdin()
    operator = Operator(keys)
    log = CellLog()
    cams = list(dict.fromkeys(([args.camera] if args.videos > 0 else []) + _policy_cameras(policy)))
    out = Path(args.out) if args.out else report_folder(Path("runs/eval"), f"cell-{Path(args.cell).stem}__{task}",
                                                         args.residual, remote)
    env_kwargs: dict[str, Any] = {"cell": args.cell, "task_id": task, "cameras": cams, "operator": operator, "log": log,
                                  "instance": "auto" if args.parallel > 1 else 0, "job": f"robo eval {args.policy}"}
    label = "base" if rl_run is None else ("base+residual" if rl_run.algo.residual else rl_run.algo.name)
    try:
        result = evaluate(CELL_ENV_ID, policy, args.episodes, seed=args.seed,
                          residual=rl_run.residual if rl_run else None, stats=rl_run.stats if rl_run else None,
                          n_parallel=args.parallel, n_action_steps=args.n_action_steps or None,
                          n_videos=args.videos, video_dir=out / "videos", env_kwargs=env_kwargs, executor_mode=mode,
                          progress=f"eval {label} on cell {Path(args.cell).stem}")
    finally:
        keys.stop()
        if remote:
            policy.close()
    cell = {"cell": args.cell, "task": task, "parallel": args.parallel, "executor": mode, **log.summary()}
    extra: dict[str, Any] = {"checkpoint": args.policy, "residual": args.residual, "cell": cell}
    print(result.summary(f"{label} on cell {Path(args.cell).stem} ({task})"))
    print(f"latency: observation age at decision p50 {cell['obs_age_ms']['p50']:.1f} ms / p99 "
          f"{cell['obs_age_ms']['p99']:.1f} ms, command age at execution p50 {cell['cmd_age_ms']['p50']:.2f} ms / "
          f"p99 {cell['cmd_age_ms']['p99']:.2f} ms, {cell['late_steps']} late steps; controller hold confirmed: "
          f"{all(c.get('hold_confirmed', False) for c in log.controllers)}")
    out.mkdir(parents=True, exist_ok=True)
    write_report(out / "report.json", {label: result}, extra=extra)
    plot_success(out / "success.png", {label: result}, title=f"{task} on cell {Path(args.cell).stem}")
    log.save(out / "steps.npz")
    print(f"report: {out / 'report.json'}; plot: {out / 'success.png'}"
          + (f"; videos: {out / 'videos'}" if result.videos else ""))
    return 0


def _policy_cameras(policy: Any) -> list[str]:
    """Camera names a policy's observation spec needs (observation.images.<name>)."""
    from robo.spec import IMAGE_PREFIX

    spec = getattr(policy, "spec", None)
    keys = getattr(spec, "image_keys", []) if spec is not None else []
    return [k.removeprefix(IMAGE_PREFIX) for k in keys]
