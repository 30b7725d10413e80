"""robo.drivers.rt — the real-time C++ controller (see README.md in this folder).

Python sends targets (joint, TCP pose, timestamped chunks); the C++ loop interpolates them, runs joint
impedance or operational-space control (pinocchio), enforces the safety limits and the watchdog, and
writes torques to a backend (MuJoCo here; Franka/Unitree when their SDKs are present at build time).

    from robo.drivers import rt
    ctrl = rt.MujocoController(model, data)                 # Panda URDF from robo.sim.assets
    ctrl.reset()
    ok = ctrl.set_ee_target(pos, quat_wxyz, gripper_width)  # False = rejected, last good target kept
    ctrl.step(50)                                           # fast mode: 50 ticks, GIL released

The extension needs libmujoco (mujoco wheel) and pinocchio's libraries (libpinocchio / cmeel wheels)
at run time; they are preloaded here from the installed wheels so the build-time paths do not matter.
"""

from __future__ import annotations

import ctypes
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
from robo.drivers.rt._rt import EVENT_NAMES, MAX_WAYPOINTS, Interpolation, RobotModel  # noqa: E402
from robo.drivers.rt.config import ControllerConfig  # noqa: E402


def default_urdf_path() -> Path:
    """The Panda URDF shipped with robo.sim (`robo/sim/assets/panda.urdf`)."""
    spec = importlib.util.find_spec("robo.sim")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("robo.sim is not importable; pass urdf_path explicitly")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "panda.urdf"


class MujocoController(_rt.MujocoController):
    """Real-time controller on a MuJoCo `MjModel`/`MjData` pair (the same C++ controller as on
    hardware). Keeps references to `model` and `data`; do not touch `data` while `start()`-ed.

    Args:
        model, data: `mujoco.MjModel` / `mujoco.MjData` with joints joint1..7, actuators actuator1..7,
            gripper actuator `actuator_gripper` (optional) and finger joints finger_joint1/2.
        urdf_path: URDF of the same robot (default: robo.sim's Panda).
        config: `ControllerConfig` (default: the Panda task defaults).
    """

    def __init__(
        self, model, data, urdf_path: str | os.PathLike | None = None, config: ControllerConfig | None = None
    ) -> None:
        config = ControllerConfig() if config is None else config
        if not isinstance(config, ControllerConfig):
            raise TypeError(f"config must be robo.drivers.rt.ControllerConfig, got {type(config).__name__}")
        path = Path(urdf_path) if urdf_path is not None else default_urdf_path()
        super().__init__(model, data, str(path), config.to_cpp())
        self.model = model
        self.data = data
        self.config = config

    def start(self, realtime: bool = True) -> None:
        super().start(realtime)
        warning = self.rt_status()["warning"]
        if realtime and warning:
            warnings.warn(f"robo.drivers.rt: {warning.strip()}", RuntimeWarning, stacklevel=2)

    start.__doc__ = _rt.MujocoController.start.__doc__

    def __enter__(self) -> MujocoController:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = [
    "ControllerConfig",
    "EVENT_NAMES",
    "Interpolation",
    "MAX_WAYPOINTS",
    "MujocoController",
    "RobotModel",
    "default_urdf_path",
]
