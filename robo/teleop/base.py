"""Teleop devices: resources a human uses to command an arm.

Every device turns its inputs into a `TeleopCommand`: an end-effector twist (normalised, world frame)
or absolute joint targets, a gripper command toggled by a button, and an enable flag (deadman or
enable latch, depending on the device). `TeleopCommand.to_action` maps it onto an arm's action
bounds; while the device is not enabled the arm holds (zero deltas / NaN joint targets = no change).

Inputs are injected at each device's own boundary in tests: terminal bytes (keyboard), SDL joystick
events (gamepad), raw HID reports (SpaceMouse), the leader arm's joints (leader arm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from robo.geometry import quat_conj, quat_mul, rotvec_from_quat
from robo.hal.resource import Health, Resource, now
from robo.spec import ACTION, Feature, Spec

#: one-shot session events a device may emit (buttons or keys)
EVENTS = ("finish", "success", "failure", "rerecord", "quit")
TWIST_NAMES = ("vx", "vy", "vz", "wx", "wy", "wz")


@dataclass
class TeleopCommand:
    """What a teleop device asks for at one instant.

    mode: "ee_delta" (use `twist`) or "joint" (use `joints`).
    twist: (6,) in [-1, 1]: [vx, vy, vz, wx, wy, wz] as fractions of the arm's largest per-step
        translation / rotation, world frame.
    joints: (7,) rad, absolute joint targets (joint mode), else None.
    gripper: -1 open .. +1 closed.
    enabled: the deadman / enable state; when False the arm must hold.
    events: one-shot events since the last read (see EVENTS).
    t: host time of the newest input that went into this command.
    ee_pose: absolute TCP target (pos (3,) m, quat wxyz (4,)) when the device knows one (leader arm).
    """

    mode: Literal["ee_delta", "joint"] = "ee_delta"
    twist: np.ndarray = field(default_factory=lambda: np.zeros(6))
    joints: np.ndarray | None = None
    gripper: float = -1.0
    enabled: bool = False
    events: tuple[str, ...] = ()
    t: float = 0.0
    ee_pose: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def moving(self) -> bool:
        return self.enabled and (self.mode == "joint" or bool(np.any(self.twist != 0.0)))

    def to_action(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """An action for an arm with action bounds `low`/`high`.

        (7,) bounds = ee_delta arm [dx, dy, dz, drx, dry, drz, gripper]: twist scaled by `high[:6]`.
        (8,) bounds = joint arm [q1..q7, gripper]: `joints` (NaN = hold when disabled or absent).
        """
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        if low.shape == (7,):
            if self.mode != "ee_delta":
                raise ValueError("a joint-space teleop command cannot drive an ee_delta arm; map it with FK first")
            d = np.clip(self.twist, -1.0, 1.0) * high[:6] if self.enabled else np.zeros(6)
            return np.append(d, self.gripper).astype(np.float32)
        if low.shape == (8,):
            if self.mode != "joint":
                raise ValueError("an ee_delta teleop command cannot drive a joint-space arm")
            q = self.joints if (self.enabled and self.joints is not None) else np.full(7, np.nan)
            return np.append(np.clip(q, low[:7], high[:7]), self.gripper).astype(np.float32)
        raise ValueError(f"no teleop mapping for an action of shape {low.shape}")

    def ee_delta_towards(
        self, pos: np.ndarray, quat_wxyz: np.ndarray, high: np.ndarray
    ) -> np.ndarray:
        """(7,) ee_delta action moving a TCP at (`pos`, `quat_wxyz`) towards `ee_pose`, clipped to `high`.

        For absolute-pose devices (leader arm) driving an end-effector follower. Holds when disabled.
        """
        high = np.asarray(high, dtype=np.float64)
        if self.ee_pose is None or not self.enabled:
            return np.append(np.zeros(6), self.gripper).astype(np.float32)
        tpos, tquat = (np.asarray(x, dtype=np.float64) for x in self.ee_pose)
        dpos = tpos - np.asarray(pos, dtype=np.float64)
        drot = rotvec_from_quat(quat_mul(tquat, quat_conj(np.asarray(quat_wxyz, dtype=np.float64))))
        d = np.clip(np.concatenate([dpos, drot]), -high[:6], high[:6])
        return np.append(d, self.gripper).astype(np.float32)


class TeleopDevice(Resource):
    """Base of keyboard, gamepad, SpaceMouse and leader-arm devices."""

    kind: ClassVar[str] = "teleop"
    mode: ClassVar[str] = "ee_delta"

    def __init__(self, config: Any = None, *, name: str | None = None, cell: str | None = None) -> None:
        super().__init__(config, name=name, cell=cell)
        self.gripper_closed = False
        self.enabled = bool(getattr(self.config, "start_enabled", False))
        self._events: list[str] = []
        self._t_input = 0.0
        self.n_reads = 0

    # the one method devices implement besides connect/close
    def read(self) -> TeleopCommand:
        """The current command (drains one-shot events)."""
        cmd = self._read()
        self.n_reads += 1
        return cmd

    def _read(self) -> TeleopCommand:
        raise NotImplementedError

    # helpers for subclasses
    def toggle_gripper(self) -> None:
        self.gripper_closed = not self.gripper_closed

    def toggle_enabled(self) -> None:
        self.enabled = not self.enabled

    def emit(self, event: str) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown teleop event {event!r} (known: {EVENTS})")
        self._events.append(event)

    def _take_events(self) -> tuple[str, ...]:
        ev, self._events = tuple(self._events), []
        return ev

    @property
    def gripper(self) -> float:
        return 1.0 if self.gripper_closed else -1.0

    def spec(self) -> Spec:
        if self.mode == "joint":
            names: tuple[str, ...] = (*(f"q{i}" for i in range(1, 8)), "gripper")
            return Spec({ACTION: Feature((8,), "float32", names, "rad (q1..q7), 1 (gripper: -1 open, +1 closed)")})
        return Spec({ACTION: Feature(
            (7,), "float32", (*TWIST_NAMES, "gripper"),
            "1 (fraction of the arm's max step; gripper -1 open, +1 closed)",
            (-1.0,) * 7, (1.0,) * 7,
        )})

    def health(self) -> Health:
        if not self._connected:
            return self.probe()
        age = now() - self._t_input if self._t_input else None
        m = {"enabled": self.enabled, "gripper_closed": self.gripper_closed, "reads": self.n_reads}
        if age is not None:
            m["last_input_s"] = round(age, 3)
        return Health("ok", "enabled" if self.enabled else "disabled (press the enable button)", m)

    def probe(self) -> Health:
        return Health("offline", "not connected")

    def status_text(self) -> str:
        return f"{'ENABLED' if self.enabled else 'disabled'} gripper={'closed' if self.gripper_closed else 'open'}"
