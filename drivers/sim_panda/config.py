"""Configuration of the `sim_panda` driver."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from robo.config import check_range


@dataclass
class SimPandaConfig:
    """A MuJoCo Panda stepped by the project controller (C++ `robo.drivers.rt` when built)."""

    scene: str = "scene_common.xml"
    """MJCF file: a name under robo/sim/assets or a path. Must contain the Panda of sim/assets/panda.xml."""
    control_mode: Literal["ee_delta", "joint"] = "ee_delta"
    """ee_delta: action = [dx, dy, dz (m), drx, dry, drz (rad, world rotation vector), gripper];
    joint: action = [q1..q7 (rad, absolute targets), gripper]. gripper: -1 open .. +1 closed."""
    control_hz: float = 10.0
    """Rate of `send_action`; each call runs 1 / (timestep * control_hz) physics ticks."""
    controller: Literal["auto", "cpp", "python"] = "auto"
    """Which controller `robo.sim.control.make_controller` builds."""
    realtime: bool = False
    """True: the C++ controller's own thread advances MuJoCo on the wall clock at the loop rate, and
    `send_action` only writes targets, exactly as with the Franka backend (what a cell runs; needs the
    C++ controller). False: lock-step, each `send_action` runs one control period of physics."""
    watchdog_timeout_s: float = 0.0
    """Real-time mode: hold when the newest target is older than this (s); 0 = 3 control periods."""
    wake_mode: Literal["sleep", "spin"] = "sleep"
    """Real-time mode: how the C++ loop waits for its next tick (`robo.drivers.rt.ControllerConfig.wake_mode`).
    sleep (default): no CPU while waiting, so N sim copies share a CPU with the policy and the learner;
    spin: the loop's punctual wake-up (~20% of a core per copy), what a real controller loop wants."""
    home_tcp_pos: tuple[float, float, float] = (0.5, 0.0, 0.25)
    """Home TCP position (m, world), gripper pointing down; solved to joints by IK at connect."""
    home_q: tuple[float, ...] = ()
    """Home joint angles (7, rad); overrides home_tcp_pos when given."""
    max_delta_pos_m: float = 0.03
    """Largest TCP translation per ee_delta action, m per axis."""
    max_delta_rot_rad: float = 0.15
    """Largest rotation per ee_delta action, rad per axis."""
    max_delta_joint_rad: float = 0.2
    """Largest joint target change per joint action, rad."""
    max_tilt_rad: float = math.pi
    """ee_delta: the target orientation stays within this angle of pointing straight down, rad."""
    gripper: Literal["linear", "binary"] = "linear"
    """ee_delta gripper mapping: linear (width = 0.08 m x (1 - g) / 2) or binary (g > 0 closes fully)."""
    workspace_low: tuple[float, float, float] = (0.25, -0.35, 0.015)
    """TCP target box lower corner, m (world)."""
    workspace_high: tuple[float, float, float] = (0.75, 0.35, 0.45)
    """TCP target box upper corner, m (world)."""
    wrist_camera: bool = True
    """Add a camera named 'wrist' on the hand (scene cameras of the MJCF are kept)."""

    def __post_init__(self) -> None:
        check_range("control_hz", self.control_hz, 1.0, 1000.0)
        check_range("max_delta_pos_m", self.max_delta_pos_m, 0.0, 0.2)
        check_range("max_delta_rot_rad", self.max_delta_rot_rad, 0.0, 1.0)
        check_range("max_delta_joint_rad", self.max_delta_joint_rad, 0.0, 1.0)
        check_range("max_tilt_rad", self.max_tilt_rad, 0.0, math.pi)
        check_range("watchdog_timeout_s", self.watchdog_timeout_s, 0.0, 10.0)
        if self.wake_mode not in ("sleep", "spin"):
            raise ValueError(f"wake_mode={self.wake_mode!r} must be 'sleep' or 'spin'")
        if self.realtime and self.controller == "python":
            raise ValueError("realtime=True needs the C++ controller (controller: auto or cpp), got controller: python")
        if self.home_q and len(self.home_q) != 7:
            raise ValueError(f"home_q has {len(self.home_q)} values, expected 7 (rad)")
        if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ValueError(f"workspace_low={self.workspace_low} must be below workspace_high={self.workspace_high}")
