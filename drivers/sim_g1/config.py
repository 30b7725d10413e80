"""Configuration of the `sim_g1` driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robo.config import check_range


@dataclass
class SimG1Config:
    """A MuJoCo G1 with its pelvis welded at standing height, the waist and arms stepped by the C++
    controller on PD drives (the same controller and command form as `unitree_g1` on rt/arm_sdk)."""

    scene: str = "g1_box_lift_scene.xml"
    """MJCF file: a name under robo/sim/assets or a path. Must contain the G1 of sim/assets/g1_welded.xml."""
    control_mode: Literal["ee_delta", "joint"] = "ee_delta"
    """ee_delta: action = [left dx, dy, dz, right dx, dy, dz (m, pelvis frame: the world's axes, the pelvis is
    welded upright), squeeze (> 0 presses the hands together)]; joint: action = the 17 upper-body joint
    targets (rad, waist then left then right arm)."""
    control_hz: float = 20.0
    """Rate of `send_action`; each call runs 1 / (timestep * control_hz) physics ticks."""
    home_left: tuple[float, float, float] = (0.25, 0.25, 0.95)
    """Home position of the left palm (m, world), hands pointing forward; solved to joints at connect."""
    home_right: tuple[float, float, float] = (0.25, -0.25, 0.95)
    """Home position of the right palm (m, world)."""
    max_delta_pos_m: float = 0.02
    """Largest hand translation per ee_delta action, m per axis."""
    max_delta_joint_rad: float = 0.1
    """Largest joint target change per joint action, rad."""

    def __post_init__(self) -> None:
        check_range("control_hz", self.control_hz, 1.0, 500.0)
        check_range("max_delta_pos_m", self.max_delta_pos_m, 0.0, 0.1)
        check_range("max_delta_joint_rad", self.max_delta_joint_rad, 0.0, 0.5)
        for name in ("home_left", "home_right"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"{name}={getattr(self, name)} must have 3 values (m)")
