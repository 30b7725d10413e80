"""Teleop devices (keyboard, gamepad, SpaceMouse, leader arm) and the human collection session.

Devices are HAL resources registered as `keyboard`, `gamepad`, `spacemouse`, `leader_arm`; each
turns its inputs into a `TeleopCommand` (end-effector twist or joint targets, gripper, enable).
`robo collect --teleop <device>` runs `robo.teleop.session.run_human_collect`.
"""

from robo.teleop.base import TeleopCommand, TeleopDevice

__all__ = ["TeleopCommand", "TeleopDevice"]
