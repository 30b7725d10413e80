"""`Humanoid`: a humanoid robot as a HAL resource (kind "humanoid"), sim or real.

It is an `Arm` as far as commanding goes (exclusive lease, `get_observation` / `send_action`,
timestamped `exec_actions`), plus its joint groups:

    robot.joint_groups()        # {"legs": (...12 joint names), "waist": (...3), "left_arm": (...7),
                                #  "right_arm": (...7), "hands": ()}, each in motor order
    robot.group_positions("left_arm")   # (7,) rad, measured
    robot.controlled_groups     # the groups this driver commands (the rest are held by the robot)

Drivers: `sim_g1` (MuJoCo) and `unitree_g1` (Unitree's DDS messages); both drive the upper body through
the same C++ controller (robo.drivers.rt) and take the same actions.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from robo.hal.resource import Arm

GROUP_NAMES = ("legs", "waist", "left_arm", "right_arm", "hands")


class Humanoid(Arm):
    """A humanoid: an actuator with named joint groups (legs, waist, left/right arm, hands)."""

    kind: ClassVar[str] = "humanoid"
    #: the groups `send_action` commands; the others are held (by the robot's own controller, or the sim's)
    controlled_groups: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def joint_groups(self) -> dict[str, tuple[str, ...]]:
        """Group name -> joint names, in motor order; every name of GROUP_NAMES is a key (maybe empty)."""

    @abc.abstractmethod
    def joint_positions(self) -> dict[str, float]:
        """Measured joint angles (rad) by joint name, at least those of the controlled groups."""

    def group_positions(self, group: str) -> np.ndarray:
        """Measured angles of one group's joints (rad), in motor order."""
        groups = self.joint_groups()
        if group not in groups:
            raise ValueError(f"{self.type_name} '{self.name}' has no joint group {group!r}; groups: {sorted(groups)}")
        q = self.joint_positions()
        missing = [j for j in groups[group] if j not in q]
        if missing:
            raise ValueError(f"{self.type_name} '{self.name}' does not measure group {group!r} ({missing[0]})")
        return np.array([q[j] for j in groups[group]], dtype=np.float64)

    def metadata(self) -> dict:
        out = super().metadata()
        out["joint_groups"] = {k: list(v) for k, v in self.joint_groups().items()}
        out["controlled_groups"] = list(self.controlled_groups)
        return out
