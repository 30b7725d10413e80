"""Leader-arm teleop: the follower tracks the joints of a second arm: `type: leader_arm`.

The leader is another arm resource of the cell (`wiring: {leader: <arm>}`), here a second
`sim_panda` that a person (or a script, in tests) moves with `set_joint_positions`; a real leader
would be a passive, back-drivable arm read through its own driver. Each read returns the leader's
joints as absolute joint targets (joint-space followers) and its TCP pose (`ee_pose`, for
end-effector followers such as the sim tasks). The leader's finger width is the gripper command.
The enable state is a pedal (`set_pedal`, or `start_enabled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robo.hal.registry import register
from robo.hal.resource import Health, now
from robo.teleop.base import TeleopCommand, TeleopDevice

GRIPPER_MAX_WIDTH = 0.08  # m


@dataclass
class LeaderArmConfig:
    """A leader arm whose joints the follower copies."""

    start_enabled: bool = True
    """Follow from the start (otherwise only while the pedal is pressed)."""
    gripper_max_width_m: float = GRIPPER_MAX_WIDTH
    """Leader finger width that means fully open, m."""

    def __post_init__(self) -> None:
        if not 0.0 < self.gripper_max_width_m <= 0.3:
            raise ValueError(f"gripper_max_width_m={self.gripper_max_width_m} is out of range (0, 0.3]")


@register("leader_arm")
class LeaderArmTeleop(TeleopDevice):
    """Joint-space teleop from a leader arm."""

    config_class: ClassVar[type] = LeaderArmConfig
    config: LeaderArmConfig
    mode: ClassVar[str] = "joint"
    required_wiring: ClassVar[tuple[str, ...]] = ("leader",)

    @property
    def leader(self) -> Any:
        return self.peers["leader"]

    def _connect(self) -> None:
        if not self.leader.is_connected:
            self.leader.connect()

    def _close(self) -> None:
        pass

    def set_pedal(self, pressed: bool) -> None:
        """The deadman pedal of the leader station."""
        self.enabled = bool(pressed)
        self._t_input = now()

    def _read(self) -> TeleopCommand:
        q = np.asarray(self.leader.joint_positions(), dtype=np.float64)
        width = float(self.leader.gripper_width())
        gripper = float(np.clip(1.0 - 2.0 * width / self.config.gripper_max_width_m, -1.0, 1.0))
        pose = self.leader.tcp_pose() if hasattr(self.leader, "tcp_pose") else None
        return TeleopCommand("joint", np.zeros(6), q, gripper, self.enabled, self._take_events(), now(), pose)

    def probe(self) -> Health:
        lead = self.peers.get("leader")
        if lead is None:
            return Health("down", "not wired to a leader arm")
        return Health("offline", f"not connected (leader: {lead.name})")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        if "leader" in self.peers:
            out["leader"] = self.peers["leader"].name
        return out
