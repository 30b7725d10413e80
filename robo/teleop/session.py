"""`robo collect --teleop <device>`: a human records demonstrations through a teleop device.

    robo collect --cell configs/cells/sim_panda.yaml --teleop spacemouse --task PandaPegInsert-v0 \
        --episodes 20 --out data/peg_human

The session leases the cell's resources (the arm exclusively, cameras shared, the teleop device
exclusively; a second job asking for them fails naming this one), runs the task in real time at its
control rate, shows a status line, and writes the dataset with `action_source="human"`.

Keys (in the terminal, with any device):
    enter   finish the episode (success as judged by the task)
    y / n   finish and mark it a success / a failure
    x       discard the episode and record it again
    q       quit (the episode in progress is discarded; finished ones are on disk)

Sim cells (a simulated arm) run the Gymnasium task `--task`; a cell with a real arm runs `CellEnv`
(the arm's observation + the cell's cameras aligned by timestamp; success is what you mark).
Crash safety comes from the dataset writer: an episode is on disk once it is complete, so a crash,
`kill -9` or Ctrl-C loses at most the episode in progress; leases die with the process.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from robo.hal.cell import Cell
from robo.hal.registry import get_driver
from robo.hal.resource import Resource
from robo.spec import ACTION, Spec
from robo.teleop.base import TeleopCommand, TeleopDevice
from robo.teleop.terminal import TerminalKeys

SESSION_KEYS = {"enter": "finish", "y": "success", "n": "failure", "x": "rerecord", "q": "quit"}
TELEOP_ALIASES = {"leader": "leader_arm"}
DEFAULT_CELL = "sim_panda"


# ----------------------------------------------------------------------------- environments


class CellEnv:
    """A real cell as a step-able environment: arm observation + timestamp-aligned camera images.

    `step` sends the action and returns the next observation; reward and success come from the
    human (keys), so `terminated` is always False.
    """

    def __init__(self, cell: Cell, arm: Resource, *, tolerance_s: float = 0.03, task: str = "teleoperation") -> None:
        from robo.hal.align import CameraGroup

        self.cell, self.arm = cell, arm
        self.cameras = {n: c for n, c in cell.by_kind("camera").items()}
        self.group = CameraGroup(self.cameras, tolerance_s=tolerance_s) if self.cameras else None
        self.task_description = task
        spec = dict(arm.spec().features)
        for cam in self.cameras.values():
            spec.update({k: v for k, v in cam.spec().features.items() if k.startswith("observation.images.")})
        self.robo_spec = Spec(spec)
        lo, hi = spec[ACTION].low, spec[ACTION].high
        self.action_low = np.array(lo if lo is not None else [-1.0] * spec[ACTION].shape[0], np.float32)
        self.action_high = np.array(hi if hi is not None else [1.0] * spec[ACTION].shape[0], np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        obs = dict(self.arm.get_observation())
        if self.group is not None:
            frames = self.group.read(timeout=1.0)
            obs.update({k: v for k, v in self.group.observation(frames).items() if k in self.robo_spec})
        return obs

    def reset(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self._obs(), {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.arm.send_action(action)
        return self._obs(), 0.0, False, False, {"success": False}

    def dropped_frames(self) -> int:
        return sum(c.n_dropped + c.n_dropped_device for c in self.cameras.values())

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.arm.tcp_pose() if hasattr(self.arm, "tcp_pose") else None

    def close(self) -> None:
        pass


class TaskEnv:
    """A robo sim task (Gymnasium) behind the same small interface as CellEnv."""

    def __init__(self, task: str, cameras: tuple[str, ...], image_size: int) -> None:
        from robo.sim.registry import make_env

        self.env = make_env(task, cameras=cameras, image_size=image_size)  # plug-in tasks too; ValueError if unknown
        u = self.env.unwrapped
        self.robo_spec: Spec = u.robo_spec
        self.task_description: str = u.task_description
        self.action_low = self.env.action_space.low.astype(np.float32)
        self.action_high = self.env.action_space.high.astype(np.float32)
        self.fps = float(self.env.metadata.get("render_fps", 10))

    def reset(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self.env.reset(seed=seed)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        return self.env.step(action)

    def dropped_frames(self) -> int:
        return 0  # cameras are rendered synchronously with the physics

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        u = self.env.unwrapped
        if not hasattr(u, "tcp_pos"):
            return None
        import mujoco

        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, np.ascontiguousarray(u.tcp_mat, dtype=np.float64).reshape(9))
        return np.array(u.tcp_pos), quat

    def close(self) -> None:
        self.env.close()


# ----------------------------------------------------------------------------- session


def _find_device(cell: Cell, name: str, keys: TerminalKeys) -> TeleopDevice:
    kind = TELEOP_ALIASES.get(name, name)
    if name in cell.resources:
        dev = cell.resources[name]
    else:
        found = cell.by_type(kind)
        if found:
            dev = next(iter(found.values()))
        else:
            cls = get_driver(kind)
            if getattr(cls, "required_wiring", ()):
                raise ValueError(f"--teleop {name}: the cell has no '{kind}' resource and it needs wiring "
                                 f"({', '.join(cls.required_wiring)}); add it to {cell.path}")
            dev = cls(name=kind, cell=cell.name)
    if not isinstance(dev, TeleopDevice):
        raise ValueError(f"--teleop {name}: resource '{dev.name}' is a {dev.kind}, not a teleop device")
    if hasattr(dev, "_keys_src") and dev._keys_src is None:
        dev._keys_src = keys  # the keyboard shares the session's terminal reader
    return dev


class Status:
    """One live status line on a terminal (plain lines otherwise)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        t = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
        elif force or t - self._last > 2.0:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = t

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()


class _Rerun:
    """Optional live view: camera images and the TCP trajectory in rerun (rerun-sdk)."""

    def __init__(self, enabled: bool, status: Status) -> None:
        self.rr: Any = None
        if not enabled:
            return
        try:
            import rerun as rr
        except ImportError:
            status.line("rerun-sdk is not installed: live view off (pip install rerun-sdk)")
            return
        rr.init("robo collect", spawn=True)
        self.rr = rr
        self.path: list[np.ndarray] = []

    def log(self, step: int, obs: dict[str, np.ndarray], tcp: np.ndarray | None) -> None:
        if self.rr is None:
            return
        rr = self.rr
        rr.set_time_sequence("step", step)
        for k, v in obs.items():
            if k.startswith("observation.images."):
                rr.log(k.removeprefix("observation.images."), rr.Image(v))
        if tcp is not None:
            self.path.append(np.asarray(tcp, np.float32))
            rr.log("tcp/trajectory", rr.LineStrips3D([np.stack(self.path)]))

    def new_episode(self) -> None:
        if self.rr is not None:
            self.path = []


def run_human_collect(
    args: argparse.Namespace, *, keys: TerminalKeys | None = None, stream: TextIO | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Record `args.episodes` human demonstrations; returns a process exit code.

    Uses args.task, args.episodes, args.out, args.cell (default sim_panda), args.teleop, args.fps,
    args.rerun, and when present args.cameras, args.image_size, args.seed, args.keep_failures.
    `keys` replaces the terminal (tests feed a pipe); `on_step` sees the loop state every step.
    """
    from robo.data import DatasetWriter

    stream = stream or sys.stderr
    own_keys = keys is None
    keys = keys or TerminalKeys.stdin()
    status = Status(stream)
    cell = Cell.load(getattr(args, "cell", None) or DEFAULT_CELL)
    device = _find_device(cell, args.teleop, keys)
    arm = _follower(cell, device)
    sim = bool(getattr(arm, "simulated", False))

    # leases: the arm, its cameras, the device (and the device's own peers, e.g. a leader arm)
    names = [arm.name, *cell.by_kind("camera"), device.name, *(p.name for p in device.peers.values())]
    names = [n for n in dict.fromkeys(names) if n in cell.resources]
    job = f"collect {args.task} -> {args.out}"
    held = cell.acquire(names, job=job)
    if device.name not in cell.resources:
        device.lease(job=job)
    env: Any = None
    writer: Any = None
    old_term = signal.getsignal(signal.SIGTERM)

    def _on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM") and _is_main_thread():
        signal.signal(signal.SIGTERM, _on_term)
    sub = keys.subscribe()
    saved = 0
    from robo.console import COLLECT_CONTROLS, ConsoleHub
    from robo.console.cli import console_session

    hub = ConsoleHub("collect", keys=keys, controls=COLLECT_CONTROLS, name=Path(str(args.out)).name)
    console = ExitStack()
    try:
        console.enter_context(console_session(hub, getattr(args, "console", None), status.line))
        if sim:
            for peer in device.peers.values():  # e.g. a leader arm; the task env owns the follower's physics
                if peer is not arm:
                    peer.connect()
            device.connect()  # fail fast, before the task is built
            cams = _cameras_for_sim(args, cell)
            env = TaskEnv(args.task, cams, int(getattr(args, "image_size", 64) or 64))
            fps = env.fps
            if args.fps and float(args.fps) != fps:
                status.line(f"note: {args.task} steps at {fps:g} Hz of sim time; recording at {fps:g} fps")
        else:
            cell.connect(names)
            device.connect()
            env = CellEnv(cell, arm, task=args.task)
            fps = float(args.fps or 10)
        writer = DatasetWriter(args.out, env.robo_spec, fps=fps, task=env.task_description, robot_type="panda")
        rerun = _Rerun(bool(getattr(args, "rerun", False)), status)
        status.line(
            f"collecting {args.episodes} episodes of {args.task} with {device.type_name} '{device.name}' "
            f"at {fps:g} Hz into {args.out}\n"
            "keys: enter finish | y success | n failure | x re-record | q quit"
            + (" | e enable, space gripper, wasd/rf move" if device.type_name == "keyboard" else "")
        )
        saved = _loop(args, env, device, writer, sub, fps, status, rerun, on_step, hub)
        writer.close()
        status.line(f"done: {saved} episode(s) in {args.out}")
        return 0
    except KeyboardInterrupt:
        status.line(f"interrupted: {saved} finished episode(s) are in {args.out}; the one in progress was dropped")
        return 130
    finally:
        console.close()
        keys.unsubscribe(sub)
        if writer is not None:
            writer.close()
        if env is not None:
            env.close()
        device.close()
        cell.close()
        held.release()
        device.release_lease()
        if _is_main_thread():
            signal.signal(signal.SIGTERM, old_term)
        if own_keys:
            keys.stop()  # gives the terminal back its normal mode


def _follower(cell: Cell, device: TeleopDevice) -> Resource:
    """The arm the device commands: its `controls` wiring, else the cell's arm that is not its leader."""
    ctl = device.peers.get("controls")
    if ctl is not None and ctl.kind == "arm":
        return ctl
    others = [a for a in cell.by_kind("arm").values() if not any(a is p for p in device.peers.values())]
    if not others:
        raise ValueError(f"cell {cell.name} has no arm for {device.type_name} '{device.name}' to command")
    return others[0]


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _cameras_for_sim(args: argparse.Namespace, cell: Cell) -> tuple[str, ...]:
    given = str(getattr(args, "cameras", "") or "")
    if given:
        return tuple(c for c in given.split(",") if c)
    return tuple(getattr(c.config, "camera", n) for n, c in cell.by_kind("camera").items())


def _action(cmd: TeleopCommand, env: Any) -> np.ndarray:
    lo, hi = env.action_low, env.action_high
    if cmd.mode == "joint" and lo.shape == (7,):
        pose = env.tcp_pose()
        if pose is None:
            raise ValueError("a joint-space device needs the follower's TCP pose to drive an ee_delta task")
        return cmd.ee_delta_towards(pose[0], pose[1], hi)
    return cmd.to_action(lo, hi)


def _loop(
    args: argparse.Namespace, env: Any, device: TeleopDevice, writer: Any, sub: Any, fps: float, status: Status,
    rerun: _Rerun, on_step: Callable[[dict[str, Any]], None] | None, publisher: Any = None,
) -> int:
    dt = 1.0 / fps
    seed = int(getattr(args, "seed", 0) or 0)
    keep_failures = bool(getattr(args, "keep_failures", False))
    saved = attempts = late = 0
    quit_ = False
    while saved < args.episodes and not quit_:
        obs, _ = env.reset(seed=seed + attempts)
        attempts += 1
        rerun.new_episode()
        writer.discard_episode()
        n_frames = steps = 0
        started = False
        outcome: bool | None = None
        info: dict[str, Any] = {}
        decided = ""
        t_start = time.monotonic()
        next_t = t_start
        ticks: collections.deque[float] = collections.deque(maxlen=20)  # recent step times, for the fps shown
        while True:
            events = [SESSION_KEYS[k] for k, _ in _drain(sub) if k in SESSION_KEYS]
            cmd = device.read()
            events += list(cmd.events)
            if "quit" in events:
                quit_ = True
                decided = "quit"
                break
            if "rerecord" in events:
                decided = "rerecord"
                break
            if "success" in events or "failure" in events or "finish" in events:
                decided = "success" if "success" in events else "failure" if "failure" in events else "finish"
                break
            action = _action(cmd, env)
            started = started or cmd.moving
            t_capture = time.time()
            next_obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            if started:  # frames before the operator first moves are not demonstration data
                frame = {k: v for k, v in obs.items() if k in writer.spec.features}
                frame.update({ACTION: np.asarray(action, np.float32), "action_source": "human",
                              "next.reward": float(reward), "next.done": bool(terminated or truncated),
                              "capture_timestamp": t_capture})
                writer.add_frame(frame)
                n_frames += 1
            obs = next_obs
            pose = env.tcp_pose()
            rerun.log(steps, obs, None if pose is None else pose[0])
            now_m = time.monotonic()
            ticks.append(now_m)
            fps_now = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 and ticks[-1] > ticks[0] else fps
            state = {"episode": saved + 1, "episodes": args.episodes, "t": now_m - t_start, "fps": fps_now,
                     "dropped": env.dropped_frames(), "late": late, "frames": n_frames, "steps": steps,
                     "device": device.status_text(), "success": bool(info.get("success", False))}
            status.show(
                f"episode {state['episode']}/{args.episodes} | t {state['t']:5.1f}s | {fps_now:4.1f} fps | "
                f"dropped {state['dropped']} late {late} | {n_frames} frames | {state['device']}"
                + (" | SUCCESS" if state["success"] else "")
            )
            if on_step is not None:
                on_step(state)
            if publisher is not None and publisher.active:
                _publish(publisher, state, obs, action, saved, attempts, started)
            if terminated or truncated:
                outcome = bool(info.get("success", False))
                decided = "success" if outcome else "timeout"
                break
            next_t += dt
            wait = next_t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late += 1
                next_t = time.monotonic()  # do not try to catch up with a burst
        if decided == "finish":
            decided = "success" if outcome or bool(info.get("success", False)) else "failure"
        keep = n_frames > 0 and (decided in ("success", "failure") or (decided == "timeout" and keep_failures))
        if keep:
            writer.save_episode(success=decided == "success")
            saved += 1
            status.line(f"episode {saved}/{args.episodes} saved ({decided}, {n_frames} frames)")
            if publisher is not None:
                publisher.note(f"episode {saved}/{args.episodes} saved ({decided}, {n_frames} frames)")
        else:
            writer.discard_episode()
            why = {"rerecord": "discarded, recording it again", "quit": "discarded (quit)",
                   "timeout": "time limit without success: discarded, recording it again"}.get(
                decided, "no motion recorded: discarded")
            status.line(f"episode {saved + 1}/{args.episodes} {why}")
    return saved


def _publish(publisher: Any, state: dict[str, Any], obs: dict[str, np.ndarray], action: np.ndarray, saved: int,
             attempts: int, started: bool) -> None:
    """This control period for the operator console (robo.console.hub): the successes are the saved
    episodes, the finished ones every attempt so far (re-records and discards count as not saved)."""
    from robo.console import period

    publisher.publish(*period(obs, action, phase="recording" if started else "waiting for motion", source="human",
                              episode=state["episode"], episodes=state["episodes"], step=state["steps"],
                              successes=saved, finished=attempts - 1, interventions=0, hint=state["device"],
                              health={"late_steps": state["late"], "dropped_frames": state["dropped"],
                                      "fps": round(float(state["fps"]), 1)}))


def _drain(q: Any) -> list[tuple[str, float]]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except Exception:
            return out

