"""Intel RealSense driver (pyrealsense2): `type: realsense`, colour + aligned depth, by serial."""

from robo.drivers.realsense.config import RealSenseConfig
from robo.drivers.realsense.driver import RealSenseCamera

__all__ = ["RealSenseCamera", "RealSenseConfig"]
