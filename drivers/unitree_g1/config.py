"""Configuration of the `unitree_g1` driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robo.config import check_range


@dataclass
class UnitreeG1Config:
    """A Unitree G1 (29 DoF) over its DDS messages (`unitree_hg` LowCmd_ / LowState_, CycloneDDS), the
    waist and arms driven by the C++ controller of drivers/rt while the robot's own balance controller
    keeps it standing (`rt/arm_sdk`)."""

    network_interface: str = ""
    """NIC on the robot's network (e.g. eth0, with an address in 192.168.123.x); "lo" for a loopback robot
    (our bridge, unitree_mujoco). Empty = CycloneDDS's own choice."""
    domain_id: int = 0
    """DDS domain: 0 on the robot; unitree_mujoco uses 1."""
    raw_lowcmd: bool = False
    """Publish on rt/lowcmd instead of rt/arm_sdk. This bypasses the robot's balance controller (the legs
    are then held by the drives' PD at the pose they had at connect): for a robot on a stand or hung
    from a gantry only. The motion service must have been released (MotionSwitcherClient) first."""
    mode_machine: int = 5
    """Expected machine type (Device > Data > Robot > Machine Type; 5 = g1_29dof). A robot reporting
    another refuses to be commanded at connect; its value is echoed in every LowCmd_."""
    control_mode: Literal["ee_delta", "joint"] = "ee_delta"
    """Same actions as sim_g1: [left dx, dy, dz, right dx, dy, dz (m, pelvis frame), squeeze] or the 17
    upper-body joint targets (rad, waist then left then right arm)."""
    control_hz: float = 20.0
    """Rate at which send_action is expected (targets are interpolated by the 500 Hz controller)."""
    publish_hz: float = 50.0
    """LowCmd_ rate (rt/arm_sdk: 50 Hz, as Unitree's g1_arm7_sdk_dds_example)."""
    loop_hz: float = 500.0
    """Rate of the C++ controller loop (the robot's own LowState_ rate)."""
    blend_rate_per_s: float = 0.2
    """rt/arm_sdk blend weight (motor_cmd[29].q) ramp: 0 -> 1 after connect, 1 -> 0 at close (1/s)."""
    velocity_limit_scale: float = 0.05
    """Joint target speed limit as a fraction of the URDF limits (0.05: 1.6-1.85 rad/s)."""
    max_delta_pos_m: float = 0.02
    """Largest hand translation per ee_delta action, m per axis."""
    max_delta_joint_rad: float = 0.1
    """Largest joint target change per joint action, rad."""
    state_timeout_s: float = 0.1
    """The controller holds when no valid rt/lowstate arrived for this long (s)."""
    connect_timeout_s: float = 5.0
    """connect() fails when no valid rt/lowstate arrives within this time (s)."""
    leg_hold_kp: float = 60.0
    """raw_lowcmd only: PD the drives run on the legs at their pose at connect (N m/rad)."""
    leg_hold_kd: float = 1.5
    """raw_lowcmd only: (N m s/rad)."""

    def __post_init__(self) -> None:
        check_range("domain_id", self.domain_id, 0, 232)
        check_range("mode_machine", self.mode_machine, 0, 255)
        check_range("control_hz", self.control_hz, 1.0, 500.0)
        check_range("publish_hz", self.publish_hz, 1.0, 1000.0)
        check_range("loop_hz", self.loop_hz, 50.0, 2000.0)
        check_range("blend_rate_per_s", self.blend_rate_per_s, 0.01, 10.0)
        check_range("velocity_limit_scale", self.velocity_limit_scale, 0.001, 1.0)
        check_range("max_delta_pos_m", self.max_delta_pos_m, 0.0, 0.1)
        check_range("max_delta_joint_rad", self.max_delta_joint_rad, 0.0, 0.5)
        check_range("state_timeout_s", self.state_timeout_s, 0.005, 5.0)
        check_range("connect_timeout_s", self.connect_timeout_s, 0.1, 60.0)
        check_range("leg_hold_kp", self.leg_hold_kp, 0.0, 500.0)
        check_range("leg_hold_kd", self.leg_hold_kd, 0.0, 50.0)
