"""ControllerConfig: the Python face of `robo_rt::ControllerConfig` (drivers/rt/include/robo_rt/config.hpp).

Field names, types and defaults mirror the C++ struct one to one (tests/drivers/rt/test_config.py
checks it); SI units, other units in the name. Load it like every robo config:
`load_config(ControllerConfig, "cell.yaml", ["cart_kp_pos=300"])`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

# string fields that are C++ enums: allowed values, and the enum's name in the extension
_ENUMS = {
    "interpolation": ("linear", "min_jerk"), "wake_mode": ("sleep", "spin"), "output_mode": ("torque", "joint_pd"),
}
_ENUM_TYPES = {"interpolation": "Interpolation", "wake_mode": "WakeMode", "output_mode": "OutputMode"}
_PER_JOINT = ("joint_kp", "joint_kd", "posture", "armature")  # n_joints values each (posture, armature: or none)


@dataclass
class ControllerConfig:
    """Configuration of the real-time controller; defaults drive the MuJoCo Panda tasks (500 Hz loop,
    10 Hz policy). Docstrings of each field: `help(robo.drivers.rt._rt._ControllerConfig)`."""

    # --- timing ---
    loop_hz: float = 0.0
    """control rate (Hz); 0 = the backend's own (MuJoCo: 1 / model.opt.timestep)"""
    policy_hz: float = 10.0
    """rate at which Python sends targets (Hz); sets the two defaults below"""
    watchdog_timeout_s: float = 0.0
    """hold when the newest target is older than this (s); 0 = 3 / policy_hz"""
    interp_duration_s: float = 0.0
    """a single target is reached over this time (s); 0 = 1 / policy_hz"""
    interpolation: Literal["linear", "min_jerk"] = "linear"
    """time scaling between targets"""

    # --- joints ---
    n_joints: int = 7
    """controlled joints; every per-joint field below has this many values"""
    output_mode: Literal["torque", "joint_pd"] = "torque"
    """torque: the backend applies the law's torques (torque drives, MuJoCo motors); joint_pd: the drives run
    PD on a position target, speed target, kp, kd and feed-forward torque (Unitree)"""

    # --- joint impedance ---
    joint_kp: tuple[float, ...] = (600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0)
    """stiffness (N m/rad), n_joints values"""
    joint_kd: tuple[float, ...] = (50.0, 50.0, 50.0, 50.0, 30.0, 25.0, 15.0)
    """damping (N m s/rad), n_joints values"""
    max_joint_error: float = 0.1
    """reference limiting: joint error clip per joint per tick (rad)"""

    # --- operational-space control ---
    cart_kp_pos: float = 400.0
    """task acceleration per metre of error (1/s^2)"""
    cart_kp_rot: float = 400.0
    """task acceleration per radian of error (1/s^2)"""
    cart_damping_ratio: float = 1.0
    """kd = 2 * ratio * sqrt(kp)"""
    nullspace_kp: float = 20.0
    """posture stiffness in the null space (N m/rad)"""
    nullspace_kd: float = 4.0
    """posture damping in the null space (N m s/rad)"""
    max_pos_error: float = 0.02
    """reference limiting: position error norm clip per tick (m)"""
    max_rot_error: float = 0.1
    """reference limiting: orientation error norm clip per tick (rad)"""
    max_ee_speed: float = 0.5
    """reference limiting: TCP velocity feed-forward norm clip (m/s)"""
    max_ee_ang_speed: float = 1.5
    """reference limiting: TCP angular velocity feed-forward norm clip (rad/s)"""
    osc_min_eig: float = 1e-3
    """floor on eigenvalues of J M^-1 J^T (singularity guard) (1/kg)"""
    posture: tuple[float, ...] = ()
    """null-space posture (rad), n_joints values; NaN entries, or none, = the joint position captured at reset()"""
    armature: tuple[float, ...] = ()
    """rotor inertia added to the model's diagonal (kg m^2), n_joints values; NaN, or none, = from the backend
    (MuJoCo) or 0"""

    # --- Cartesian targets on PD drives (output_mode joint_pd): differential IK ---
    ik_gain: float = 20.0
    """the commanded configuration closes the TCP error at this rate (1/s)"""
    ik_damping: float = 0.02
    """damped least squares: lambda added to the singular values (m)"""
    ik_posture_gain: float = 1.0
    """null-space pull of the commanded configuration toward the posture (1/s)"""

    # --- gripper ---
    gripper_kp: float = 2000.0
    """width stiffness (N/m)"""
    gripper_kd: float = 20.0
    """width damping (N s/m)"""
    gripper_max_force: float = 70.0
    """force clip (N)"""
    gripper_max_width: float = 0.08
    """widest opening; width targets outside [0, this] are rejected (m)"""

    # --- watchdog hold ---
    hold_damping_scale: float = 2.0
    """hold uses joint_kp and joint_kd times this (never zero torque)"""

    # --- safety limits ---
    joint_limit_margin: float = 0.05
    """soft zone inside each position limit; joint targets are clamped out of it (rad)"""
    joint_limit_kp: float = 200.0
    """push-back stiffness inside the soft zone (N m/rad)"""
    joint_limit_kd: float = 10.0
    """push-back damping inside the soft zone (N m s/rad)"""
    velocity_limit_scale: float = 1.0
    """joint speed limit = this x model limit (URDF velocity)"""
    velocity_limit_kd: float = 20.0
    """braking damping on speed above the limit (N m s/rad)"""
    torque_limit_scale: float = 1.0
    """torque clip = this x model limit (URDF effort)"""
    torque_rate_limit: float = 1000.0
    """|d tau / dt| clip (N m/s); Franka's limit is 1000"""
    workspace_min: tuple[float, ...] = (0.0, -0.7, -0.05)
    """TCP box lower corner, world frame (m)"""
    workspace_max: tuple[float, ...] = (0.9, 0.7, 1.0)
    """TCP box upper corner, world frame (m)"""
    workspace_kp: float = 2000.0
    """wall stiffness when the measured TCP leaves the box (N/m)"""
    workspace_kd: float = 50.0
    """wall damping on outward TCP speed (N s/m)"""
    quat_norm_tolerance: float = 0.1
    """quaternion targets must have | |q| - 1 | <= this (then normalised)"""
    state_timeout_s: float = 0.1
    """hold (as the watchdog does) when the backend has had no fresh state for this long (s)"""

    # --- joint-limit braking (hardening, issue 22) ---
    joint_brake_margin: float = 0.01
    """braking plans to stop this far inside each hard position limit (rad)"""
    joint_brake_torque_fraction: float = 0.8
    """braking is planned with this fraction of the torque limit; the rest is headroom for coupling
    between joints and model error"""

    # --- real-time thread ---
    rt_priority: int = 80
    """SCHED_FIFO priority; 0 = stay SCHED_OTHER"""
    lock_memory: bool = True
    """mlockall(MCL_CURRENT) before the loop starts"""
    cpu_affinity: int = -1
    """pin the loop thread to this CPU; -1 = no pinning"""
    stats_window: int = 65536
    """timing samples kept for percentiles (ticks)"""

    # --- wake-up of the real-time loop (issue 24) ---
    wake_mode: Literal["sleep", "spin"] = "spin"
    """sleep: clock_nanosleep to the deadline (no CPU while waiting, wakes as late as the OS makes it);
    spin: clock_nanosleep to spin_margin_us before the deadline, then spin on the monotonic clock"""
    spin_margin_us: float = 0.0
    """spin mode: the sleep ends this long before the deadline (us); 0 = calibrated from the wake-up
    latency measured at start and tracked while running; at most 0.2 x the loop period"""

    def __post_init__(self) -> None:
        for name in _PER_JOINT:
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != self.n_joints and not (name in ("posture", "armature") and not value):
                raise ValueError(f"{name} must have {self.n_joints} values (n_joints), got {len(value)}")
            setattr(self, name, value)
        for name in ("workspace_min", "workspace_max"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise ValueError(f"{name} must have 3 values, got {len(value)}")
            setattr(self, name, value)
        for name, allowed in _ENUMS.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} must be one of {', '.join(map(repr, allowed))}")
        message = self.to_cpp().validate()  # one source of truth for ranges: the C++ validator
        if message:
            raise ValueError(message)

    def to_cpp(self):
        """The C++ struct (`robo.drivers.rt._rt._ControllerConfig`) with these values."""
        from robo.drivers.rt import _rt

        cpp = _rt._ControllerConfig()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _ENUMS:
                value = getattr(getattr(_rt, _ENUM_TYPES[f.name]), value)
            elif isinstance(value, tuple):
                value = list(value)
            setattr(cpp, f.name, value)
        return cpp


__all__ = ["ControllerConfig"]
