"""robo.drivers.rt — the real-time C++ controller (see README.md in this folder).

Python sends targets (joint, TCP pose, timestamped chunks); the C++ loop interpolates them, runs joint
impedance or operational-space control (pinocchio), enforces the safety limits and the watchdog, and
writes torques (or PD commands) to a backend: MuJoCo; an external one fed by a driver's I/O thread
(the unitree_g1 DDS driver); Franka when libfranka is present at build time.

    from robo.drivers import rt
    ctrl = rt.MujocoController(model, data)                 # Panda URDF from robo.sim.assets
    ctrl.reset()
    ok = ctrl.set_ee_target(pos, quat_wxyz, gripper_width)  # False = rejected, last good target kept
    ctrl.step(50)                                           # fast mode: 50 ticks, GIL released
    ctrl.state().ee_pos, ctrl.stats()["lateness_us"]["p99"], ctrl.events()["watchdog_trips"]

Any robot: `robot=RobotDescription` names the controlled joint groups and their TCP frames (default: the
Panda); two TCP frames make Cartesian targets bimanual (`set_ee_targets(pos (2, 3), quat (2, 4), width)`).
`ExternalController` runs the same controller on a backend whose I/O another thread does (the unitree_g1
DDS driver): `push_state(q, dq, tau)` in, `take_command()` out.

The extension needs libmujoco (mujoco wheel) and pinocchio's libraries (libpinocchio / cmeel wheels)
at run time; they are preloaded here from the installed wheels so the build-time paths do not matter.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import os
import sys
import warnings
from pathlib import Path


def _preload_shared_libraries() -> None:
    """dlopen libmujoco and pinocchio's libraries from the installed wheels (RTLD_GLOBAL), so the
    extension's DT_NEEDED entries resolve whatever RPATH the build left behind."""
    spec = importlib.util.find_spec("mujoco")
    if spec is not None and spec.submodule_search_locations:
        mujoco_dir = Path(list(spec.submodule_search_locations)[0])
        for lib in sorted(mujoco_dir.glob("libmujoco.so*")):
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            break
    for entry in sys.path:
        lib_dir = Path(entry or ".") / "cmeel.prefix" / "lib"
        if (lib_dir / "libpinocchio_default.so").is_file():
            for name in ("libpinocchio_default.so", "libpinocchio_parsers.so"):
                ctypes.CDLL(str(lib_dir / name), mode=ctypes.RTLD_GLOBAL)
            break


if os.environ.get("ROBO_RT_NO_PRELOAD") != "1":
    _preload_shared_libraries()

from robo.drivers.rt import _rt  # noqa: E402
from robo.drivers.rt._rt import (  # noqa: E402
    EVENT_NAMES,
    GAIN_LIMITS,  # the largest value set_gains accepts, per field
    HAS_FRANKA,
    MAX_DOF,
    MAX_TCPS,
    MAX_WAYPOINTS,
    Interpolation,
    JointGroup,
    OutputMode,
    RobotDescription,
    RobotModel,
    WakeMode,
    unitree_crc,  # the CRC Unitree robots check on LowCmd_ / LowState_ (drivers/unitree_g1)
)
from robo.drivers.rt.config import ControllerConfig  # noqa: E402


class Record(dict):
    """A dict whose keys are also attributes: `ctrl.state()["q"]` is `ctrl.state().q`."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def default_urdf_path() -> Path:
    """The Panda URDF shipped with robo.sim (`robo/sim/assets/panda.urdf`)."""
    spec = importlib.util.find_spec("robo.sim")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("robo.sim is not importable; pass urdf_path explicitly")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "panda.urdf"


def _config(config: ControllerConfig | None, q_home) -> ControllerConfig:
    config = ControllerConfig() if config is None else config
    if not isinstance(config, ControllerConfig):
        raise TypeError(f"config must be robo.drivers.rt.ControllerConfig, got {type(config).__name__}")
    if q_home is not None:  # the null-space posture (rad), as PyController's q_home
        config = dataclasses.replace(config, posture=tuple(float(v) for v in q_home))
    return config


class _PythonSide:
    """Python conveniences shared by every controller class (the C++ methods do the work)."""

    def state(self) -> Record:
        return Record(super().state())

    state.__doc__ = _rt.MujocoController.state.__doc__

    def snapshot(self) -> Record:
        """`state()` plus the names the hardware drivers use (`tcp_pos`, `tcp_quat_wxyz`)."""
        s = self.state()
        s["tcp_pos"], s["tcp_quat_wxyz"] = s["ee_pos"], s["ee_quat_wxyz"]
        return s

    def stats(self) -> Record:
        return Record({k: Record(v) if isinstance(v, dict) else v for k, v in super().stats().items()})

    stats.__doc__ = _rt.MujocoController.stats.__doc__

    def events(self) -> Record:
        return Record(super().events())

    events.__doc__ = _rt.MujocoController.events.__doc__

    def rt_status(self) -> Record:
        return Record(super().rt_status())

    rt_status.__doc__ = _rt.MujocoController.rt_status.__doc__

    def start(self, realtime: bool = True) -> None:
        super().start(realtime)
        warning = self.rt_status()["warning"]
        if realtime and warning:
            warnings.warn(f"robo.drivers.rt: {warning.strip()}", RuntimeWarning, stacklevel=2)

    start.__doc__ = _rt.MujocoController.start.__doc__

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MujocoController(_PythonSide, _rt.MujocoController):
    """Real-time controller on a MuJoCo `MjModel`/`MjData` pair (the same C++ controller as on
    hardware). Keeps references to `model` and `data`; do not touch `data` while `start()`-ed.

    Args:
        model, data: `mujoco.MjModel` / `mujoco.MjData` with the robot's joints and torque actuators
            (Panda: joints joint1..7, actuators actuator1..7, gripper actuator `actuator_gripper`, finger
            joints finger_joint1/2).
        urdf_path: URDF of the same robot (default: robo.sim's Panda).
        config: `ControllerConfig` (default: the Panda task defaults).
        q_home: null-space posture (rad, (n,)); overrides `config.posture` (default: pose at reset()).
        robot: `RobotDescription` of the controlled joints, TCP frames and actuators (default: the Panda).
    """

    def __init__(
        self,
        model,
        data,
        urdf_path: str | os.PathLike | None = None,
        config: ControllerConfig | None = None,
        *,
        q_home=None,
        robot: RobotDescription | None = None,
    ) -> None:
        config = _config(config, q_home)
        path = Path(urdf_path) if urdf_path is not None else default_urdf_path()
        robot = RobotDescription.panda() if robot is None else robot
        super().__init__(model, data, str(path), config.to_cpp(), robot)
        self.model = model
        self.data = data
        self.config = config


if HAS_FRANKA:

    class FrankaController(_PythonSide, _rt.FrankaController):
        """The controller on a Franka arm over libfranka (1 kHz, the robot paces the loop). UNTESTED.

        Args:
            robot_ip: FCI address. urdf_path: the arm as URDF (default: robo.sim's Panda).
            config: `ControllerConfig`. enforce_realtime: libfranka refuses a non-RT kernel.
            use_gripper: drive the Franka Hand. q_home: null-space posture (rad, (7,)).
        """

        def __init__(
            self,
            robot_ip: str,
            urdf_path: str | os.PathLike | None = None,
            config: ControllerConfig | None = None,
            *,
            enforce_realtime: bool = True,
            use_gripper: bool = True,
            q_home=None,
        ) -> None:
            config = _config(config, q_home)
            path = Path(urdf_path) if urdf_path is not None else default_urdf_path()
            super().__init__(robot_ip, str(path), config.to_cpp(), enforce_realtime, use_gripper)
            self.config = config


class ExternalController(_PythonSide, _rt.ExternalController):
    """The controller on a backend fed from outside (the same C++ controller as on MuJoCo): another
    thread pushes the measured state (`push_state(q, dq, tau)`, n values each) and takes the newest
    command (`take_command()` -> dict with drive_pd, q, dq, kp, kd, tau_ff, tau, or None). Push a first
    state, then `reset()`, then `start(realtime=True)`.

    Args:
        urdf_path: the robot's URDF. robot: `RobotDescription` (joint groups, TCP frames).
        config: `ControllerConfig` (`n_joints` must match the description).
        rate_hz: loop rate (Hz). stale_after_s: a state older than this is not fresh (s); the controller
            holds once it has had no fresh state for `config.state_timeout_s`.
    """

    def __init__(self, urdf_path: str | os.PathLike, robot: RobotDescription, config: ControllerConfig,
                 rate_hz: float = 500.0, stale_after_s: float = 0.02) -> None:
        if not isinstance(config, ControllerConfig):
            raise TypeError(f"config must be robo.drivers.rt.ControllerConfig, got {type(config).__name__}")
        super().__init__(str(urdf_path), robot, config.to_cpp(), float(rate_hz), float(stale_after_s))
        self.config = config


__all__ = [
    "ControllerConfig",
    "EVENT_NAMES",
    "GAIN_LIMITS",
    "ExternalController",
    "HAS_FRANKA",
    "Interpolation",
    "JointGroup",
    "MAX_DOF",
    "MAX_TCPS",
    "MAX_WAYPOINTS",
    "MujocoController",
    "OutputMode",
    "Record",
    "RobotDescription",
    "RobotModel",
    "WakeMode",
    "default_urdf_path",
    "unitree_crc",
]
if HAS_FRANKA:
    __all__.append("FrankaController")
