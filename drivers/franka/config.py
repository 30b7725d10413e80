"""Configuration of the `franka` driver."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from robo.config import check_range


@dataclass
class FrankaConfig:
    """A real Franka arm reached over FCI (1 kHz) by the C++ controller of drivers/rt."""

    robot_ip: str = ""
    """IP address of the robot's control box (FCI), e.g. 172.16.0.2 (required)."""
    control_mode: Literal["ee_delta", "joint"] = "ee_delta"
    """Same action layouts as sim_panda: [dx, dy, dz, drx, dry, drz, gripper] or [q1..q7, gripper]."""
    control_hz: float = 10.0
    """Rate at which send_action is expected to be called (targets are interpolated at 1 kHz)."""
    max_delta_pos_m: float = 0.03
    """Largest TCP translation per ee_delta action, m per axis."""
    max_delta_rot_rad: float = 0.15
    """Largest rotation per ee_delta action, rad per axis."""
    max_delta_joint_rad: float = 0.1
    """Largest joint target change per joint action, rad."""
    workspace_low: tuple[float, float, float] = (0.25, -0.35, 0.015)
    """TCP target box lower corner, m (robot base frame)."""
    workspace_high: tuple[float, float, float] = (0.75, 0.35, 0.45)
    """TCP target box upper corner, m (robot base frame)."""
    max_tilt_rad: float = math.pi
    """ee_delta: the target orientation stays within this angle of pointing straight down, rad."""
    gripper: Literal["linear", "binary"] = "linear"
    """ee_delta gripper mapping: linear (width = 0.08 m x (1 - g) / 2) or binary (g > 0 closes fully)."""
    home_q: tuple[float, ...] = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)
    """Home joint angles (7, rad) the cell's reset moves to (default: Franka's "ready" pose)."""
    realtime_required: bool = True
    """Refuse to start without SCHED_FIFO (libfranka's own requirement on a non-RT kernel)."""

    def __post_init__(self) -> None:
        if not str(self.robot_ip).strip():
            raise ValueError("robot_ip is required: the FCI address of the robot, e.g. robot_ip: 172.16.0.2")
        check_range("control_hz", self.control_hz, 1.0, 1000.0)
        check_range("max_delta_pos_m", self.max_delta_pos_m, 0.0, 0.1)
        check_range("max_delta_rot_rad", self.max_delta_rot_rad, 0.0, 0.5)
        check_range("max_delta_joint_rad", self.max_delta_joint_rad, 0.0, 0.5)
        check_range("max_tilt_rad", self.max_tilt_rad, 0.0, math.pi)
        if len(self.home_q) != 7:
            raise ValueError(f"home_q has {len(self.home_q)} values, expected 7 (rad)")
