"""`robo run --cell ... --policy <ckpt | tcp://host:port> [--residual <run>]`: deploy a policy on a cell.

The loop is the RL actor's, without a learner: `ResidualVecEnv` over one `CellEnv` (the base through
`ChunkExecutor`, async for a served policy), plus the run's deterministic residual when given. Every
episode is recorded to `<out>/dataset` (robo's dataset format: observation, the executed action,
`action_source` policy | residual, `base_action`, `policy_version`, reward, done, capture time) unless
`--no-record`; `<out>/run.json` has the episodes, latency percentiles and the controller's own final
state, `<out>/steps.npz` every step as the arm executed it.

A live status line shows episode, step, success, latencies; keys (robo.cells.operator): p pause
(the controller holds) / resume, q stop (hold and exit), y / n mark success / failure, g go (real
cells wait for it after each reset). Ctrl-C and SIGTERM end like q: the controller holds, finished
episodes are on disk, the lease is released.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from robo.spec import ACTION

ENDPOINT_SCHEMES = ("tcp://", "ipc://")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robo.console.cli import add_console_argument
    from robo.transport.auth import add_curve_arguments

    parser.add_argument("--cell", required=True, help="cell YAML (or a name under configs/cells)")
    parser.add_argument("--policy", default=None,
                        help="BC checkpoint folder or `robo serve` endpoint tcp://host:port "
                             "(default with --residual: the base the run was trained on)")
    parser.add_argument("--residual", default=None, help="RL run folder: its policy on top of the base")
    parser.add_argument("--task", default=None,
                        help="sim cell: the task it runs (default: the checkpoint's); real cell: a description")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run, 0 = until stopped (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes' resets (default: 0)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/run/<cell>__<time>)")
    parser.add_argument("--no-record", action="store_true", help="do not record the episodes to a dataset")
    parser.add_argument("--cameras", default=None, help="comma-separated cell cameras to observe (default: all)")
    parser.add_argument("--executor", default="auto", choices=("auto", "sync", "async"),
                        help="chunk execution: async (request ahead) or sync; auto: async for a served policy")
    parser.add_argument("--n-action-steps", type=int, default=0, help="execution horizon (0: the policy's own)")
    add_torch_threads_argument(parser)
    add_console_argument(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "client")


def add_torch_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch CPU threads for a local policy (default: 1: on a loaded CPU more threads "
                             "stall on each other and starve the control loop)")


def set_torch_threads(args: argparse.Namespace) -> None:
    import torch

    if args.torch_threads < 1:
        raise ValueError(f"--torch-threads={args.torch_threads} must be >= 1")
    torch.set_num_threads(args.torch_threads)


def load_policies(args: argparse.Namespace) -> tuple[Any, str, Any, bool]:
    """(base policy, task, residual run or None, remote) from --policy / --residual / --task."""
    from robo.commands.eval import _local_policy, _remote_policy

    set_torch_threads(args)
    rl_run = None
    if args.residual:
        from robo.learn.algo import load_run

        rl_run = load_run(args.residual)
        args.task = args.task or rl_run.task
        if args.policy is None:
            if not rl_run.algo.residual or not rl_run.base_checkpoint:
                raise ValueError(f"--residual {args.residual}: the run records no base; pass --policy")
            args.policy = rl_run.base_checkpoint
    if args.policy is None:
        raise ValueError("say what to run: --policy <checkpoint | tcp://host:port> and/or --residual <run>")
    remote = args.policy.startswith(ENDPOINT_SCHEMES)
    policy, task, _ = _remote_policy(args) if remote else _local_policy(args)
    return policy, task, rl_run, remote


def executor_mode(args: argparse.Namespace, remote: bool) -> str:
    return args.executor if args.executor != "auto" else ("async" if remote else "sync")


def cameras_arg(args: argparse.Namespace) -> list[str] | None:
    return None if args.cameras is None else [c for c in args.cameras.split(",") if c]


def policy_version(policy: Any, rl_run: Any) -> int:
    """The version of the last policy in the chain: the residual run's updates, else the server's, else 0."""
    if rl_run is not None:
        report = Path(rl_run.record.get("run_dir", "")) / "report.json"
        try:
            return int(json.loads(report.read_text()).get("updates", 0))
        except (OSError, ValueError):
            return 0
    version = getattr(policy, "policy_version", None)
    return int(version) if isinstance(version, str) and version.isdigit() else 0


def run(args: argparse.Namespace, *, keys: Any = None, stream: Any = None) -> int:
    """Deploy on the cell; returns the exit code (0, or 130 after Ctrl-C / SIGTERM)."""
    from robo.cells import CellEnv, CellLog, Operator, OperatorStop
    from robo.console import RUN_CONTROLS, ConsoleHub, cell_health
    from robo.console.cli import console_session
    from robo.data.atomic import atomic_write_json
    from robo.learn.residual_env import ResidualVecEnv
    from robo.teleop.session import Status
    from robo.teleop.terminal import TerminalKeys

    if args.episodes < 0:
        raise ValueError(f"--episodes={args.episodes} must be >= 0 (0 = until stopped)")
    policy, task, rl_run, remote = load_policies(args)
    if rl_run is not None:
        rl_run.record.setdefault("run_dir", str(args.residual))
    out = Path(args.out or f"runs/run/{Path(args.cell).stem}__{time.strftime('%Y%m%d-%H%M%S')}")
    if (out / "run.json").exists() or (out / "dataset").exists():
        raise FileExistsError(f"run folder {out} already holds a run; pick another --out")
    status = Status(stream or sys.stderr)
    own_keys = keys is None
    keys = keys or TerminalKeys.stdin()
    operator = Operator(keys)
    log = CellLog()
    env = envs = writer = None
    restore_signals = interrupt_on_signals()
    results: list[dict[str, Any]] = []
    code, why = 0, "done"
    hub = ConsoleHub("run", keys=keys, controls=RUN_CONTROLS, name=out.name)
    console = ExitStack()

    def say(text: str) -> None:  # the cell's waits (go, paused) on the terminal and in the console
        status.line(text)
        hub.note(text)
        if text.startswith("paused"):
            hub.publish({"phase": "paused"})
        elif text.startswith("episode ready"):
            hub.publish({"phase": "waiting for go"})

    try:
        console.enter_context(console_session(hub, getattr(args, "console", None), status.line))
        env = CellEnv(args.cell, task, cameras=cameras_arg(args), operator=operator, status_fn=say,
                      log=log, job=f"robo run {args.policy}")
        hub.health_fn = lambda: cell_health(env)
        envs = ResidualVecEnv(task, policy, 1, args.seed, stats=rl_run.stats if rl_run else None,
                              n_action_steps=args.n_action_steps or None, env_fn=lambda i: env,
                              executor_mode=executor_mode(args, remote))
        if not args.no_record:
            from robo.data import DatasetWriter

            out.mkdir(parents=True, exist_ok=True)
            writer = DatasetWriter(out / "dataset", env.robo_spec, fps=env.control_hz, task=env.task_description,
                                   env_id=task if env.sim_task is not None else None)
        status.line(f"robo run: {args.policy}{' + ' + args.residual if args.residual else ''} on cell "
                    f"{env.cell.name} ({task}); {args.episodes or 'unlimited'} episode(s)"
                    f"{'' if writer is None else ' recorded to ' + str(out / 'dataset')}\n{_keys_help()}")
        _loop(args, env, envs, writer, rl_run, policy_version(policy, rl_run), status, log, results, hub)
    except OperatorStop:
        why = "stopped by the operator"
    except KeyboardInterrupt:
        code, why = 130, "interrupted"
    finally:
        hub.health_fn = None  # the console stops reading the controller before it closes
        if envs is not None:
            envs.close()  # CellEnv.close: the controller holds, devices close, the lease is released
        elif env is not None:
            env.close()
        if writer is not None:
            writer.discard_episode()  # the episode in progress (finished ones are on disk)
            writer.close()
        if remote:
            policy.close()
        if own_keys:
            keys.stop()
        restore_signals()
        console.close()
    summary = {"cell": args.cell, "task": task, "policy": args.policy, "residual": args.residual,
               "executor": executor_mode(args, remote), "ended": why, "episodes": results,
               "success_rate": float(np.mean([r["success"] for r in results])) if results else 0.0,
               "dataset": None if writer is None else str(out / "dataset"), **log.summary()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "run.json", summary)
    log.save(out / "steps.npz")
    k = sum(r["success"] for r in results)
    held = all(c.get("hold_confirmed", False) for c in log.controllers) if log.controllers else None
    status.line(f"{why}: {len(results)} episode(s), {k} success(es); controller hold confirmed: {held}; "
                f"obs age p50 {summary['obs_age_ms']['p50']:.1f} ms, command age p50 "
                f"{summary['cmd_age_ms']['p50']:.1f} ms; report {out / 'run.json'}")
    return code


def _loop(args: argparse.Namespace, env: Any, envs: Any, writer: Any, rl_run: Any, version: int, status: Any,
          log: Any, results: list[dict[str, Any]], publisher: Any = None) -> None:
    residual = rl_run.residual if rl_run is not None else None
    source = "residual" if residual is not None else "policy"
    keys = [k for k in env.robo_spec.features if k != ACTION]
    obs, base = envs.reset()
    n_frames = 0
    while not args.episodes or len(results) < args.episodes:
        if args.episodes and len(results) == args.episodes - 1:
            env.wait_go = False  # after the last episode the arm goes home and the run ends: no "go" to wait for
        raw, t_obs = envs.raw[0], env.t_obs
        action = base if residual is None else np.clip(base + residual(obs, base), -1.0, 1.0)
        step = envs.step(action)
        executed_step = env.last_info.get("executed") is not None  # a step met by a hold (or dropped) sent nothing
        ended = bool(step.terminated[0] or step.truncated[0])
        if writer is not None and executed_step and step.valid[0]:
            frame = {k: raw[k] for k in keys}
            frame.update({ACTION: envs.scaler.unnormalize(action[0]), "action_source": source,
                          "policy_version": version, "next.reward": float(step.reward[0]), "next.done": ended,
                          "capture_timestamp": t_obs})
            if residual is not None:
                frame["base_action"] = envs.scaler.unnormalize(base[0])
            writer.add_frame(frame)
            n_frames += 1
        if not step.valid[0]:  # non-finite data: the episode cannot be trusted
            if writer is not None:
                writer.discard_episode()
            status.line(f"episode {len(results) + 1}: non-finite observation, dropped")
            n_frames = 0
        elif ended:
            success = bool(step.success[0])
            if writer is not None and n_frames:
                writer.save_episode(success=success)
            results.append({"success": success, "length": int(step.episode_lengths[0]) if step.episode_lengths else 0,
                            "hold": bool(env.last_info.get("hold")), "dropped": bool(env.last_info.get("dropped")),
                            "frames": n_frames})
            n_frames = 0
            text = (f"episode {len(results)}: {'success' if success else 'failure'} after "
                    f"{results[-1]['length']} steps{' (controller hold)' if results[-1]['hold'] else ''}")
            status.line(text)
            if publisher is not None:
                publisher.note(text)
        else:
            recent = log.rows[-50:]
            age = np.median([r["obs_age_s"] for r in recent]) * 1e3 if recent else float("nan")
            cmd = np.nanmedian([r["cmd_age_s"] for r in recent]) * 1e3 if recent else float("nan")
            k = sum(r["success"] for r in results)
            status.show(f"episode {len(results) + 1}/{args.episodes or '-'} | step {env.n_steps} | success {k}/"
                        f"{len(results)} | obs age {age:5.1f} ms | cmd age {cmd:4.1f} ms | late {env.n_late}")
        if publisher is not None and publisher.active:
            _publish(publisher, env, envs.raw[0], envs.scaler.unnormalize(action[0]), source, results, args.episodes)
        obs, base = step.obs, step.base


def _publish(publisher: Any, env: Any, raw: dict[str, np.ndarray], action: np.ndarray, source: str,
             results: list[dict[str, Any]], episodes: int) -> None:
    """This control period for the operator console (robo.console.hub)."""
    from robo.console import period

    publisher.publish(*period(raw, action, phase="autonomous", source=source, episode=len(results) + 1,
                              episodes=episodes, step=env.n_steps, successes=int(sum(r["success"] for r in results)),
                              finished=len(results), interventions=0), t_capture=env.t_obs)


def _keys_help() -> str:
    from robo.cells.operator import KEYS_HELP

    return KEYS_HELP + " | Ctrl-C hold and exit"


def interrupt_on_signals() -> Any:
    """Make Ctrl-C and SIGTERM raise KeyboardInterrupt in the main thread, so a command on a cell always
    ends in its hold, even where SIGINT came in ignored (a process started in the background of a script
    inherits SIG_IGN for it, and Python then installs no KeyboardInterrupt). Returns the restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in old:
        signal.signal(sig, _raise_interrupt)

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
