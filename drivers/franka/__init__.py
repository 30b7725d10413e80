"""Franka Panda / FR3 hardware driver (libfranka through the C++ controller of drivers/rt)."""

from robo.drivers.franka.config import FrankaConfig
from robo.drivers.franka.driver import Franka

__all__ = ["Franka", "FrankaConfig"]
