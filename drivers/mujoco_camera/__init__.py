"""MuJoCo camera driver: `type: mujoco_camera`, wired to a MuJoCo resource (`wiring: {sim: arm}`)."""

from robo.drivers.mujoco_camera.config import MujocoCameraConfig
from robo.drivers.mujoco_camera.driver import MujocoCamera

__all__ = ["MujocoCamera", "MujocoCameraConfig"]
