"""Who intervenes: a person with a teleop device (`DeviceOperator`) or a script standing in for one in
simulation (`ScriptedOperator`). Both answer the session two questions each control period:
`events(ctx)` (phase events: robo.hil.phases.EVENTS, plus episode marks) and, while a person is in
control, `action(ctx)` (an action in the env's units, or None to hold).

Session keys (terminal, with any device; none of them moves a keyboard-teleop arm):

    key   event      effect
    p     pause      the controller holds (p again resumes)
    t     takeover   a person takes control: recovery (the device drives)
    c     correct    recovery done: the correction segment starts
    h     handback   control returns to the policy (hg-dagger); ends the episode after a correction (rac)
    y/n   success / failure   mark the episode and end it
    q     quit       hold, keep the episode so far, end the session
"""

from __future__ import annotations

import contextlib
import queue
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from robo.hil.phases import PhaseMachine

SESSION_KEYS = {"p": "pause", "t": "takeover", "c": "correct", "h": "handback", "y": "success", "n": "failure",
                "q": "quit"}
KEYS_HELP = "keys: p pause/resume | t take over | c correct | h hand back | y/n success/failure | q quit"
MARKS = ("success", "failure", "quit")


class DeviceLost(RuntimeError):
    """The teleop device stopped answering during a takeover (unplugged, closed, failed)."""


@dataclass
class Context:
    """What an operator sees at one control period."""

    env: Any  # the gym env (a CellEnv, or a fast-path task env)
    phases: PhaseMachine
    step: int  # steps into the episode
    obs: dict[str, np.ndarray]  # the env's raw observation now


class DeviceOperator:
    """A person: session keys from the terminal (and the device's buttons), actions from a teleop device.

    Takeover without a jump: relative devices (keyboard, gamepad, SpaceMouse: ee deltas) start from
    where the arm is by construction; an absolute one (a leader arm) drives only once its pose agrees
    with the follower's within `align_tol_m` (until then the arm holds and the status says how far off
    it is). A device that disconnects, fails or reports unhealthy during a takeover raises `DeviceLost`.
    """

    def __init__(self, device: Any, keys: Any = None, *, align_tol_m: float = 0.02,
                 takeover_on_motion: bool = True, lease: Any = None) -> None:
        """`lease`: the device's lease, held until `close()`."""
        self.device = device
        self.lease = lease
        self.keys = keys
        self._sub = keys.subscribe() if keys is not None else None
        self.align_tol_m = float(align_tol_m)
        self.takeover_on_motion = bool(takeover_on_motion)
        self.aligned = False
        self.misalignment_m = 0.0
        self._cmd: Any = None  # this period's command (read once, in events())
        self._error = ""

    def events(self, ctx: Context) -> list[str]:
        """Session keys, the device's own buttons (success / failure / quit), and, while the policy drives,
        a takeover as soon as the enabled device moves (`takeover_on_motion`: HIL-SERL's rule)."""
        out: list[str] = []
        while self._sub is not None:
            try:
                key, _ = self._sub.get_nowait()
            except queue.Empty:
                break
            if key in SESSION_KEYS:
                event = SESSION_KEYS[key]
                out.append("resume" if event == "pause" and ctx.phases.phase == "paused" else event)
        self._cmd, self._error = self._read()
        if self._cmd is not None:
            out += [e for e in self._cmd.events if e in MARKS]
            if self.takeover_on_motion and ctx.phases.phase == "autonomous" and self._cmd.moving:
                out.append("takeover")
        return out

    def _read(self) -> tuple[Any, str]:
        """(the device's command, "") or (None, why it gave none)."""
        dev = self.device
        try:
            if not dev.is_connected:
                return None, f"teleop device '{dev.name}' is not connected"
            cmd = dev.read()
            health = dev.health()
        except Exception as e:  # noqa: BLE001 - whatever the driver raises, the device is gone
            return None, f"teleop device '{dev.name}' failed: {' '.join(str(e).split())}"
        if health.status not in ("ok", "degraded"):
            return None, f"teleop device '{dev.name}' is {health}"
        return cmd, ""

    def new_episode(self) -> None:
        self.aligned = False

    def hint(self) -> str:
        """What the status line should tell the person."""
        if self._cmd is not None and self._cmd.ee_pose is not None and not self.aligned and self.misalignment_m:
            return f"bring the {self.device.type_name} to the arm: {100 * self.misalignment_m:.1f} cm off"
        return self.device.status_text()

    def on_phase(self, phase: str) -> None:
        if phase == "recovery":
            self.aligned = False  # a new takeover: an absolute device must agree with the arm again

    def action(self, ctx: Context) -> np.ndarray | None:
        from robo.teleop.session import _action

        cmd = self._cmd
        if cmd is None:  # no answer this period: during a takeover that ends it (the gate holds the arm)
            raise DeviceLost(self._error or f"teleop device '{self.device.name}' gave no command")
        if cmd.ee_pose is not None and not self.aligned:  # absolute device: agree first, then drive
            pose = ctx.env.unwrapped.tcp_pose() if hasattr(ctx.env.unwrapped, "tcp_pose") else None
            if pose is not None:
                self.misalignment_m = float(np.linalg.norm(np.asarray(cmd.ee_pose[0]) - pose[0]))
                self.aligned = self.misalignment_m <= self.align_tol_m
            if not self.aligned:
                return None
        return _action(cmd, _ActionView(ctx.env))

    def close(self) -> None:
        if self._sub is not None and self.keys is not None:
            self.keys.unsubscribe(self._sub)
            self._sub = None
        try:
            self.device.close()
        finally:
            if self.lease is not None:
                self.lease.release()
                self.lease = None


class _ActionView:
    """The bits of an env `robo.teleop.session._action` needs (bounds, TCP pose)."""

    def __init__(self, env: Any) -> None:
        self.action_low, self.action_high = env.action_space.low, env.action_space.high
        self._env = env.unwrapped

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self._env.tcp_pose() if hasattr(self._env, "tcp_pose") else None


# ------------------------------------------------------------------------------------- simulation


class TaskView:
    """A task's privileged simulation state, wherever the episode runs: a fast-path task env (its own
    state), or a sim cell (the task's rules evaluated on the arm's world, the TCP target from the arm)."""

    def __init__(self, env: Any) -> None:
        from robo.cells.env import CellEnv

        u = env.unwrapped
        self.cell = u if isinstance(u, CellEnv) else None
        if self.cell is not None and self.cell.sim_task is None:
            raise ValueError(f"cell {self.cell.cell.name}: a scripted operator needs privileged sim state: a "
                             "simulated cell running a task (a person operates a real one: --teleop <device>)")
        self.task_env = self.cell.sim_task.env if self.cell is not None else env
        self.u: Any = self.task_env.unwrapped

    @contextlib.contextmanager
    def synced(self) -> Iterator[Any]:
        """The task env (unwrapped) reading the episode's current state, for the duration of the block."""
        if self.cell is None:
            yield self.u
            return
        arm, u = self.cell.arm, self.u
        with arm.sim_lock:
            own = (u.data, u.target_pos, u.target_quat)
            u.data = arm.world()
            u.target_pos, u.target_quat = arm.ee_target()
            try:
                yield u
            finally:
                u.data, u.target_pos, u.target_quat = own


@dataclass
class ScriptedOperatorConfig:
    """How the scripted operator watches, recovers and corrects (robo.hil.operators.ScriptedOperator)."""

    no_progress_steps: int = 12
    """Take over when the task's expert, tracking the episode, sees no progress for this many steps."""
    corridor_m: float = 0.25
    """Take over when the TCP is farther than this from where the expert would be heading (m)."""
    drop_steps: int = 2
    """Take over when an object that was in the hand has been out of it for this many steps."""
    pause_steps: int = 0
    """Hold this many steps before taking over (a person stopping the robot to look first)."""
    recovery_back_steps: int = 8
    """Recover toward the TCP pose logged this many steps before the failure fired."""
    recovery_tol_m: float = 0.01
    """Recovery is done within this distance of that pose (m)..."""
    recovery_max_steps: int = 12
    """...or after this many steps."""
    handback_steps: int = 15
    """hg-dagger: hand back after this many correction steps (rac: correct to the end)."""
    max_interventions: int = 3
    """Takeovers per episode at most (then the policy is left to finish or time out)."""


class ScriptedOperator:
    """A simulated person who watches privileged sim state (see ScriptedOperatorConfig for the rules):
    takes over when a failure predicate fires (an object dropped, the TCP out of a corridor around the
    expert's path, no progress), recovers by driving back toward a logged earlier TCP pose of the same
    episode, then corrects with the task's scripted expert. Its time in control counts like a person's."""

    def __init__(self, env: Any, config: ScriptedOperatorConfig | None = None, *, seed: int = 0) -> None:
        from robo.sim.registry import make_expert

        self.cfg = config or ScriptedOperatorConfig()
        self.view = TaskView(env)
        self.expert = make_expert(self.view.task_env, noise=0.0, seed=seed)
        self.reason = ""
        self.reasons: list[str] = []
        self.new_episode()

    def new_episode(self) -> None:
        self.expert.reset()
        self._poses: deque[tuple[np.ndarray, float]] = deque(maxlen=self.cfg.recovery_back_steps + 1)
        self._best = -np.inf
        self._since_best = 0
        self._was_holding = False
        self._dropped_for = 0
        self._paused_for = 0
        self._in_phase = 0
        self._recover_to: tuple[np.ndarray, float] | None = None
        self._pending: list[str] = []

    def events(self, ctx: Context) -> list[str]:
        ph = ctx.phases
        if ph.phase == "autonomous":
            fired = self._watch()
            if fired and ph.counters.interventions < self.cfg.max_interventions:
                self.reason = fired
                self.reasons.append(fired)
                self._recover_to = self._poses[0] if self._poses else None
                self._paused_for = 0
                return ["pause"] if self.cfg.pause_steps > 0 else ["takeover"]
            return []
        if ph.phase == "paused":
            self._paused_for += 1
            return ["takeover"] if self._paused_for >= self.cfg.pause_steps else []
        self._in_phase += 1
        if ph.phase == "recovery":
            with self.view.synced() as u:
                done = self._recover_to is None or float(np.linalg.norm(u.tcp_pos - self._recover_to[0])) \
                    < self.cfg.recovery_tol_m
            if done or self._in_phase >= self.cfg.recovery_max_steps:
                return ["correct"]
        if ph.phase == "correction" and ph.strategy == "hg-dagger" and self._in_phase >= self.cfg.handback_steps:
            return ["handback"]
        return []

    def hint(self) -> str:
        return f"took over: {self.reason}" if self.reason else ""

    def on_phase(self, phase: str) -> None:
        """Called when the phase changes: the expert restarts for a correction, the watch after a handback."""
        self._in_phase = 0
        if phase == "correction":
            self.expert.reset()
        if phase == "autonomous":
            self._best, self._since_best, self._dropped_for = -np.inf, 0, 0
            self._was_holding = False

    def action(self, ctx: Context) -> np.ndarray | None:
        with self.view.synced() as u:
            if ctx.phases.phase == "correction":
                return self.expert.act()
            target = self._recover_to
            a = np.zeros(7, np.float32)
            if target is not None:
                d = target[0] - u.tcp_pos
                a[:3] = np.clip(d, -0.025, 0.025)
                a[6] = target[1]
            else:
                a[6] = -1.0
            return np.clip(a, self.view.task_env.action_space.low, self.view.task_env.action_space.high)

    def _watch(self) -> str:
        """Track the episode with the expert; the failure predicate that fired, or ""."""
        cfg = self.cfg
        with self.view.synced() as u:
            waypoint = self.expert.track()
            tcp = np.array(u.tcp_pos)
            holding = self.expert.holding()
            grip = 1.0 if float(u.gripper_width) < 0.07 else -1.0
        self._poses.append((tcp, grip))
        self._was_holding = self._was_holding or holding
        self._dropped_for = self._dropped_for + 1 if (self._was_holding and not holding) else 0
        if self._dropped_for >= cfg.drop_steps:
            return "object dropped"
        if float(np.linalg.norm(tcp - waypoint)) > cfg.corridor_m:
            return "TCP out of the corridor"
        progress = float(self.expert.phase) - float(np.linalg.norm(tcp - waypoint))
        if progress > self._best + 0.005:
            self._best, self._since_best = progress, 0
        else:
            self._since_best += 1
        if self._since_best >= cfg.no_progress_steps:
            return f"no progress for {cfg.no_progress_steps} steps"
        return ""

    def close(self) -> None:
        pass
