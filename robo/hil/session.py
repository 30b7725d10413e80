"""`robo intervene`: human-in-the-loop sessions on a cell (RaC, HG-DAgger), and rounds of sessions + retraining.

    robo intervene --cell sim_panda --policy runs/bc/<run>/checkpoint --teleop keyboard --episodes 10
    robo intervene --cell sim_panda --policy <ckpt> --teleop scripted --strategy hg-dagger \
        --rounds 3 --demos data/lift_demos --out runs/hil/lift

The policy (a checkpoint or a `robo serve` endpoint, plus an optional residual run) drives; the
operator watches and intervenes (keys: robo.hil.operators; phases: robo.hil.phases). Every frame is
recorded with its labels: `action_source` (policy | residual | human | hold), `segment`, `intervention_id`,
`policy_version`, `base_action` (the frozen base's action: the policy's proposal without a residual), the
executed `action`, and `intervention`
(LeRobot's DAgger flag: a person acted); each episode with its success (the task's on a sim cell, the
operator's mark on a real one). `<out>/session.json` has the counters per episode and per session
(interventions, human / autonomous / paused seconds).

`--teleop scripted` (sim cells) is the scripted operator (robo.hil.operators.ScriptedOperator): the
whole loop runs and is measured without a person. With `--rounds N` the session alternates with
retraining: round r's sessions are added to the training data (`robo train bc --data <demos> --data
<sessions...>`, starting from the current policy) and the next round runs the retrained policy;
`<out>/rounds.json` and the printed table report intervention rate, success and human time per round.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from robo.hil.gate import Decision, DeviceLost, Intervention
from robo.hil.phases import STRATEGIES, Counters
from robo.spec import ACTION

__all__ = ["run_session", "run_rounds", "add_arguments", "intervene"]


def run_session(env: Any, policy: Any, operator: Any, *, strategy: str = "rac", episodes: int = 10,
                writer: Any = None, seed: int = 0, residual: Any = None, stats: dict | None = None,
                version: int = 0, status: Any = None, executor_mode: str = "sync",
                n_action_steps: int | None = None, on_step: Any = None, publisher: Any = None) -> dict[str, Any]:
    """Run `episodes` human-in-the-loop episodes of `policy` (+ `residual(obs, base)`) on `env` (a CellEnv or
    a fast-path task env) with `operator`; record them to `writer` when given. Returns the session report
    {"episodes": [...], "totals": counters, "ended": why}. Episodes end by the task (success, time limit),
    by the operator (rac after a correction, a mark), or when the device is lost (then the arm holds, the
    episode is kept and the session ends). `publisher` (robo.console.hub) is shown the state, the
    camera frames and the status lines every control period (and every held frame of a pause)."""
    from robo.learn.residual_env import ResidualVecEnv

    line = status.line if status is not None else (lambda text: None)

    def say(text: str) -> None:
        line(text)
        if publisher is not None:
            publisher.note(text)
    hz = float(env.metadata.get("render_fps", 10))
    envs = ResidualVecEnv("", policy, 1, seed, stats=stats, n_action_steps=n_action_steps,
                          env_fn=lambda i: env, executor_mode=executor_mode)
    keys = [k for k in (writer.spec.features if writer is not None else ()) if k != ACTION]
    frames: list[dict[str, Any]] = []

    def record(raw: dict[str, np.ndarray], action: np.ndarray, d: Decision, base: np.ndarray | None,
               reward: float = 0.0, done: bool = False) -> None:
        if writer is None:
            return
        frame = {k: raw[k] for k in keys}
        frame.update({ACTION: np.asarray(action, np.float32), "action_source": d.source, "segment": d.segment,
                      "intervention_id": d.intervention_id, "intervention": d.human, "policy_version": version,
                      # None until the task ends it: an episode the operator ends gets done on its last frame
                      "next.reward": float(reward), "next.done": True if done else None,
                      "capture_timestamp": time.time()})
        if base is not None:
            frame["base_action"] = base
        writer.add_frame(frame)
        frames.append(frame)

    def publish(raw: dict[str, np.ndarray], action: np.ndarray | None, d: Decision) -> None:
        if publisher is None or not publisher.active:
            return
        # a held frame is observed now (CellEnv.observe); a stepped one at the env's t_obs
        t_capture = None if d.source == "hold" else getattr(env.unwrapped, "t_obs", None)
        publisher.publish(*_console_period(raw, action, d, gate, operator, len(results), episodes, totals, results),
                          t_capture=t_capture)

    def on_hold(raw: dict[str, np.ndarray], a: np.ndarray, d: Decision) -> None:
        record(raw, a, d, None)
        publish(raw, a, d)

    gate = Intervention(operator, strategy, control_hz=hz, on_hold=on_hold)
    source = "residual" if residual is not None else "policy"
    results: list[dict[str, Any]] = []
    totals = Counters()
    why = "done"
    try:
        obs, base = envs.reset()
        gate.new_episode()
        t_ep = time.monotonic()
        while len(results) < episodes:
            raw = envs.raw[0]
            proposal = base if residual is None else np.clip(base + residual(obs, base), -1.0, 1.0)
            try:
                d = gate.decide(env, raw, proposal[0], source, envs.scaler)
            except DeviceLost as e:
                say(f"episode {len(results) + 1}: {e}: the controller holds; the episode is kept, the session ends")
                _finish(writer, frames, False, results, gate, totals, "device lost", time.monotonic() - t_ep)
                why = "device lost"
                break
            if d.replan:
                o, b = envs.replan(0, d.obs)
                obs, base = o[None], b[None]
                continue
            raw = d.obs if d.obs is not None else raw  # re-observed after a pause
            if d.ended:
                _finish(writer, frames, bool(d.success), results, gate, totals, "operator", time.monotonic() - t_ep)
                say(_episode_line(results))
                if d.quit:
                    why = "quit by the operator"
                    break
                o, b = envs.restart(0)
                obs, base = o[None], b[None]
                gate.new_episode()
                t_ep = time.monotonic()
                continue
            step = envs.step(d.action[None])
            ended = bool(step.terminated[0] or step.truncated[0])
            if status is not None and hasattr(status, "show"):
                status.show(_status_line(len(results) + 1, episodes, gate, d, operator))
            if step.valid[0]:
                record(raw, envs.scaler.unnormalize(d.action), d, envs.scaler.unnormalize(base[0]),
                       float(step.reward[0]), ended)
            publish(envs.raw[0], envs.scaler.unnormalize(d.action), d)
            if on_step is not None:
                on_step(gate, d, step)
            if not step.valid[0]:
                if writer is not None:
                    writer.discard_episode()
                frames.clear()
                say(f"episode {len(results) + 1}: non-finite observation, dropped")
                gate.new_episode()
            elif ended:
                success = bool(step.success[0]) if gate.success is None else gate.success
                _finish(writer, frames, success, results, gate, totals, "task", time.monotonic() - t_ep)
                say(_episode_line(results))
                gate.new_episode()
                t_ep = time.monotonic()
            obs, base = step.obs, step.base
    finally:
        if writer is not None:
            writer.discard_episode()  # an episode in progress (a crash, Ctrl-C): finished ones are on disk
        operator.close()
        envs.close()
    return {"episodes": results, "totals": totals.to_json(), "ended": why, "strategy": strategy,
            "success_rate": float(np.mean([r["success"] for r in results])) if results else 0.0,
            "interventions_per_episode": totals.interventions / max(1, len(results)),
            "operator_s": round(totals.human_s + totals.paused_s, 3)}


def _console_period(raw: dict[str, np.ndarray], action: np.ndarray | None, d: Decision, gate: Intervention,
                    operator: Any, n_done: int, episodes: int, totals: Counters, results: list) -> tuple[dict, dict]:
    """What the operator console shows of this control period (robo.console.hub.period)."""
    from robo.console import period

    c = gate.phases.counters
    return period(raw, action, phase=d.segment, source=d.source, episode=n_done + 1, episodes=episodes,
                  step=gate.step, interventions=c.interventions,
                  interventions_total=totals.interventions + c.interventions,
                  successes=int(sum(r["success"] for r in results)), finished=n_done, human_s=round(c.human_s, 2),
                  autonomous_s=round(c.autonomous_s, 2),
                  hint=operator.hint() if hasattr(operator, "hint") else "")


def _finish(writer: Any, frames: list, success: bool, results: list, gate: Intervention, totals: Counters,
            ended_by: str, wall_s: float) -> None:
    c = gate.phases.counters
    totals.add(c)
    segments = _segments(frames)
    if writer is not None and frames:
        writer.save_episode(success=success)
    results.append({"success": bool(success), "ended_by": ended_by, "frames": len(frames), "segments": segments,
                    "history": list(gate.phases.history), "wall_s": round(wall_s, 3), **c.to_json()})
    frames.clear()


def _segments(frames: list[dict[str, Any]]) -> list[str]:
    """The run-length order of the recorded segments, e.g. [autonomous, paused, recovery, correction]."""
    out: list[str] = []
    for f in frames:
        if not out or out[-1] != f["segment"]:
            out.append(f["segment"])
    return out


def _status_line(k: int, n: int, gate: Intervention, d: Decision, operator: Any) -> str:
    c = gate.phases.counters
    hint = operator.hint() if hasattr(operator, "hint") else ""
    return (f"episode {k}/{n} | {d.segment.upper():10s} | {d.source:8s} | takeovers {c.interventions} | "
            f"human {c.human_s:5.1f} s | autonomous {c.autonomous_s:5.1f} s" + (f" | {hint}" if hint else ""))


def _episode_line(results: list[dict[str, Any]]) -> str:
    r = results[-1]
    return (f"episode {len(results)}: {'success' if r['success'] else 'failure'} | {r['interventions']} "
            f"intervention(s), human {r['human_s']:.1f} s, autonomous {r['autonomous_s']:.1f} s | "
            f"{' > '.join(r['segments'])}")


# ------------------------------------------------------------------------------------------ rounds


def run_rounds(make_env: Any, policy_path: str, make_operator: Any, *, rounds: int, demos: str, out: Path,
               strategy: str, episodes: int, seed: int = 0, retrain_steps: int = 500, retrain_lr: float = 1e-4,
               batch_size: int = 64,
               extra_fraction: float = 0.0, eval_task: str = "", eval_episodes: int = 0, status: Any = None,
               torch_threads: int = 1, publisher: Any = None) -> list[dict[str, Any]]:
    """Alternate `rounds` sessions and retrainings; round r's policy is the one trained after round r-1.

    `make_env()` / `make_operator(env)` build each session's env and operator. Each round retrains from the
    current policy on the demos plus every session so far (robo.learn.bc, `extra_data`). With `eval_task`,
    each policy is also measured on `eval_episodes` fixed seeds of the fast-path task (no operator)."""
    from robo.data import DatasetWriter
    from robo.data.atomic import atomic_write_json
    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.policies import load_policy

    say = status.line if status is not None else print
    report: list[dict[str, Any]] = []
    sessions: list[str] = []
    current = policy_path
    for r in range(rounds + 1):
        row: dict[str, Any] = {"round": r, "policy": current}
        if eval_task and eval_episodes:
            row["eval_success"] = _evaluate(current, eval_task, eval_episodes, seed)
        if r == rounds:  # the last retrained policy: measured, not run in a session
            report.append(row)
            break
        env = make_env()
        operator = make_operator(env)
        data = out / f"round-{r}" / "sessions"
        writer = DatasetWriter(data, env.unwrapped.robo_spec, fps=float(env.metadata.get("render_fps", 10)),
                               task=env.unwrapped.task_description, env_id=_env_id(env))
        try:
            session = run_session(env, load_policy(current), operator, strategy=strategy, episodes=episodes,
                                  writer=writer, seed=seed + 1000 * r, version=r, status=status,
                                  publisher=publisher)
        finally:
            writer.close()
        atomic_write_json(out / f"round-{r}" / "session.json", session)
        sessions.append(str(data))
        row.update(session_success=session["success_rate"],
                   interventions_per_episode=session["interventions_per_episode"],
                   human_s=session["totals"]["human_s"], operator_s=session["operator_s"],
                   autonomous_s=session["totals"]["autonomous_s"], episodes=len(session["episodes"]))
        cfg = BCTrainConfig(data=demos, extra_data=tuple(sessions), extra_fraction=extra_fraction, init=current,
                            steps=retrain_steps, batch_size=batch_size, warmup_steps=min(50, retrain_steps // 4),
                            lr=retrain_lr, seed=seed + r, torch_threads=torch_threads, checkpoint_every=10**9)
        summary = train_bc(cfg, "flow", None, out / f"round-{r}" / "bc")
        current = summary["checkpoint"]
        row["retrained"] = current
        report.append(row)
        atomic_write_json(out / "rounds.json", report)
        say(_round_line(row))
    atomic_write_json(out / "rounds.json", report)
    return report


def _env_id(env: Any) -> str | None:
    """The Gymnasium task id an episode of `env` replays on (a sim cell's task, a task env's id)."""
    u = env.unwrapped
    if getattr(u, "sim_task", None) is not None:
        return u.task_id
    return env.spec.id if getattr(env, "spec", None) is not None and getattr(u, "sim_task", "none") == "none" else None


def _evaluate(checkpoint: str, task: str, episodes: int, seed: int) -> float:
    from robo.learn.evaluate import evaluate
    from robo.policies import load_policy

    return float(evaluate(task, load_policy(checkpoint), n_episodes=episodes, seed=seed).success_rate)


def _round_line(row: dict[str, Any]) -> str:
    ev = f" | eval {100 * row['eval_success']:.0f}%" if "eval_success" in row else ""
    return (f"round {row['round']}: session success {100 * row['session_success']:.0f}% | "
            f"{row['interventions_per_episode']:.2f} interventions/episode | human {row['human_s']:.1f} s{ev}")


def rounds_table(report: list[dict[str, Any]]) -> str:
    """A markdown table of a rounds report."""
    lines = ["| round | eval success | session success | interventions / episode | human s |",
             "|---|---|---|---|---|"]
    for row in report:
        ev = f"{100 * row['eval_success']:.0f}%" if "eval_success" in row else "-"
        if "session_success" in row:
            lines.append(f"| {row['round']} | {ev} | {100 * row['session_success']:.0f}% | "
                         f"{row['interventions_per_episode']:.2f} | {row['human_s']:.1f} |")
        else:
            lines.append(f"| {row['round']} | {ev} | - | - | - |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robo.cells.run import add_torch_threads_argument
    from robo.console.cli import add_console_argument
    from robo.transport.auth import add_curve_arguments

    parser.add_argument("--cell", required=True, help="cell YAML (or a name under configs/cells)")
    parser.add_argument("--policy", default=None, help="BC checkpoint folder or `robo serve` endpoint tcp://host:port")
    parser.add_argument("--residual", default=None, help="RL run folder: its policy on top of the base")
    parser.add_argument("--task", default=None, help="sim cell: the task (default: the checkpoint's)")
    parser.add_argument("--teleop", default="keyboard",
                        help="who intervenes: a teleop device of the cell (keyboard, gamepad, spacemouse, leader) "
                             "or `scripted` (sim cells: the scripted operator)")
    parser.add_argument("--strategy", default="rac", choices=STRATEGIES,
                        help="rac: the episode ends after a correction; hg-dagger: control returns to the policy")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per session (default: 10)")
    parser.add_argument("--rounds", type=int, default=0, help="alternate N sessions with retraining (needs --demos)")
    parser.add_argument("--demos", default=None, help="--rounds: the demonstrations the policy was trained on")
    parser.add_argument("--retrain-steps", type=int, default=500, help="--rounds: BC steps per retraining")
    parser.add_argument("--eval-episodes", type=int, default=0,
                        help="--rounds on a sim cell: also evaluate each policy on N fixed seeds of the task")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes' resets")
    parser.add_argument("--out", default=None, help="session folder (default: runs/hil/<cell>__<time>)")
    parser.add_argument("--cameras", default=None, help="comma-separated cell cameras to observe (default: all)")
    add_torch_threads_argument(parser)
    add_console_argument(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "client")


def intervene(args: argparse.Namespace, *, keys: Any = None, stream: Any = None) -> int:
    """`robo intervene`; returns the exit code."""
    from robo.cells import CellEnv, OperatorStop
    from robo.cells.run import cameras_arg, interrupt_on_signals, load_policies, policy_version
    from robo.console import INTERVENE_CONTROLS, ConsoleHub, cell_health
    from robo.console.cli import console_session
    from robo.data import DatasetWriter
    from robo.data.atomic import atomic_write_json
    from robo.teleop.session import Status
    from robo.teleop.terminal import TerminalKeys

    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} must be >= 1")
    if args.rounds < 0 or (args.rounds and not args.demos):
        raise ValueError("--rounds N needs --demos <the dataset the policy was trained on> (N >= 1)")
    policy, task, rl_run, remote = load_policies(args)
    out = Path(args.out or f"runs/hil/{Path(args.cell).stem}__{time.strftime('%Y%m%d-%H%M%S')}")
    if (out / "session.json").exists() or (out / "rounds.json").exists():
        raise FileExistsError(f"session folder {out} already holds a session; pick another --out")
    status = Status(stream or sys.stderr)
    own_keys = keys is None
    keys = keys or TerminalKeys.stdin()
    restore_signals = interrupt_on_signals()  # Ctrl-C / SIGTERM end in a hold
    made: list[Any] = []
    hub = ConsoleHub("intervene", keys=keys, controls=INTERVENE_CONTROLS, name=out.name)
    console = ExitStack()

    def make_env() -> Any:
        from robo.cells import Operator
        from robo.cells.operator import GO_KEYS

        # the cell listens for "go" only (a real cell waits for it after moving home); the session owns the rest.
        # The scripted operator reads no keys: q (terminal or console) stops through the cell (a hold)
        keymap = {**GO_KEYS, "q": "stop"} if args.teleop == "scripted" else GO_KEYS
        env = CellEnv(args.cell, task, cameras=cameras_arg(args), status_fn=status.line,
                      operator=Operator(keys, keymap=keymap), job=f"robo intervene {args.policy}")
        made.append(env)
        hub.health_fn = lambda: cell_health(env)
        return env

    def make_operator(env: Any) -> Any:
        return _operator(args, env, keys)

    code = 0
    try:
        console.enter_context(console_session(hub, getattr(args, "console", None), status.line))
        status.line(f"robo intervene: {args.policy} on cell {args.cell} ({task}), {args.strategy}, operator "
                    f"{args.teleop}; {args.episodes} episode(s){f' x {args.rounds} rounds' if args.rounds else ''}"
                    f" into {out}\n{_keys_help()}")
        if args.rounds:
            if remote or rl_run is not None:
                raise ValueError("--rounds retrains a local BC checkpoint: pass --policy <checkpoint> (no --residual)")
            from robo.cells.training import is_sim_cell

            report = run_rounds(make_env, args.policy, make_operator, rounds=args.rounds, demos=args.demos, out=out,
                                strategy=args.strategy, episodes=args.episodes, seed=args.seed,
                                retrain_steps=args.retrain_steps,
                                eval_task=task if is_sim_cell(args.cell) else "", eval_episodes=args.eval_episodes,
                                status=status, torch_threads=args.torch_threads, publisher=hub)
            status.line(rounds_table(report))
            return 0
        env = make_env()
        operator = make_operator(env)
        out.mkdir(parents=True, exist_ok=True)
        writer = DatasetWriter(out / "dataset", env.robo_spec, fps=env.control_hz, task=env.task_description,
                               env_id=task if env.sim_task is not None else None)
        try:
            report = run_session(env, policy, operator, strategy=args.strategy, episodes=args.episodes,
                                 writer=writer, seed=args.seed, residual=rl_run.residual if rl_run else None,
                                 stats=rl_run.stats if rl_run else None, version=policy_version(policy, rl_run),
                                 status=status, executor_mode="async" if remote else "sync", publisher=hub)
        finally:
            writer.close()
        report.update(cell=args.cell, task=task, policy=args.policy, residual=args.residual, operator=args.teleop)
        atomic_write_json(out / "session.json", report)
        t = report["totals"]
        status.line(f"{report['ended']}: {len(report['episodes'])} episode(s), success "
                    f"{100 * report['success_rate']:.0f}%, {t['interventions']} intervention(s), human "
                    f"{t['human_s']:.1f} s, autonomous {t['autonomous_s']:.1f} s; report {out / 'session.json'}")
    except OperatorStop:
        status.line(f"stopped by the operator (the controller holds): finished episodes are in {out}")
    except KeyboardInterrupt:
        code = 130
        status.line(f"interrupted: finished episodes are in {out}")
    finally:
        hub.health_fn = None  # the console stops reading the controller before it closes
        for env in made:
            env.close()  # the controller holds, devices close, the lease is released
        console.close()
        if remote:
            policy.close()
        if own_keys:
            keys.stop()
        restore_signals()
    return code


def _operator(args: argparse.Namespace, env: Any, keys: Any) -> Any:
    from robo.hil.operators import DeviceOperator, ScriptedOperator

    if args.teleop == "scripted":
        return ScriptedOperator(env, seed=int(getattr(args, "seed", 0) or 0))
    from robo.teleop.session import _find_device

    device = _find_device(env.cell, args.teleop, keys)
    job = f"robo intervene --teleop {args.teleop}"
    held = env.cell.acquire([device.name], job=job) if device.name in env.cell.resources else device.lease(job=job)
    try:
        for peer in device.peers.values():  # e.g. a leader arm's own arm
            if peer is not env.arm and not peer.is_connected:
                peer.connect()
        device.connect()
    except BaseException:
        held.release()
        raise
    return DeviceOperator(device, keys, lease=held)


def _keys_help() -> str:
    from robo.hil.operators import KEYS_HELP

    return KEYS_HELP + " | Ctrl-C hold and exit"
