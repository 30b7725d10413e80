"""Driver registry: driver type name -> Resource class.

Built-in drivers are imported lazily by name (so `pyrealsense2` is only imported when a RealSense is
used). Third-party packages add drivers through the `robo.drivers` entry-point group:

    # pyproject.toml of a plugin package
    [project.entry-points."robo.drivers"]
    my_arm = "my_pkg.my_arm"            # a module that runs @register("my_arm"), or
    my_cam = "my_pkg.cams:MyCamera"     # the Resource class itself

A driver module registers its class with the decorator:

    @register("sim_panda")
    class SimPanda(Arm):
        config_class = SimPandaConfig
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

from robo.config import ConfigError

ENTRY_POINT_GROUP = "robo.drivers"

# name -> module that registers it (one line per built-in driver)
BUILTIN: dict[str, str] = {
    "sim_panda": "robo.drivers.sim_panda",
    "sim_g1": "robo.drivers.sim_g1",
    "unitree_g1": "robo.drivers.unitree_g1",
    "mujoco_camera": "robo.drivers.mujoco_camera",
    "opencv_camera": "robo.drivers.opencv_camera",
    "realsense": "robo.drivers.realsense",
    "franka": "robo.drivers.franka",
    "keyboard": "robo.teleop.keyboard",
    "gamepad": "robo.teleop.gamepad",
    "spacemouse": "robo.teleop.spacemouse",
    "leader_arm": "robo.teleop.leader_arm",
}

_REGISTRY: dict[str, type] = {}
_ORIGIN: dict[str, str] = {}

R = TypeVar("R", bound=type)


class UnknownDriverError(ConfigError):
    """No driver of that name is built in, registered, or installed as an entry point."""


def register(name: str) -> Callable[[R], R]:
    """Class decorator: make a Resource subclass available as driver type `name`."""

    def deco(cls: R) -> R:
        prev = _REGISTRY.get(name)
        if prev is not None and prev is not cls and prev.__qualname__ != cls.__qualname__:
            raise ValueError(f"driver '{name}' is already registered by {prev.__module__}.{prev.__qualname__}")
        cls.type_name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        _ORIGIN.setdefault(name, cls.__module__)
        return cls

    return deco


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:
        return {}
    return {ep.name: ep for ep in eps}


def available() -> dict[str, str]:
    """All driver names that can be loaded -> where they come from (module or entry point)."""
    out = dict(BUILTIN)
    for name, ep in _entry_points().items():
        out.setdefault(name, f"entry point {ep.value}")
    for name, origin in _ORIGIN.items():
        out.setdefault(name, origin)
    return dict(sorted(out.items()))


def get_driver(name: str) -> type:
    """The Resource class for driver type `name` (imports its module on first use)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN:
        importlib.import_module(BUILTIN[name])
        if name in _REGISTRY:
            return _REGISTRY[name]
        raise ImportError(f"module {BUILTIN[name]} did not register driver '{name}'")
    ep = _entry_points().get(name)
    if ep is not None:
        obj: Any = ep.load()
        if isinstance(obj, type):
            register(name)(obj)
        if name in _REGISTRY:
            _ORIGIN[name] = f"entry point {ep.value}"
            return _REGISTRY[name]
        raise ImportError(f"entry point {ENTRY_POINT_GROUP}:{name} = {ep.value} did not register driver '{name}'")
    known = ", ".join(available())
    raise UnknownDriverError(f"unknown resource type '{name}' (known: {known})")


def is_known(name: str) -> bool:
    return name in _REGISTRY or name in BUILTIN or name in _entry_points()
