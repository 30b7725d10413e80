"""Configuration of the `realsense` driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robo.config import check_range


@dataclass
class RealSenseConfig:
    """One RealSense camera, chosen by serial number."""

    serial: str = ""
    """Serial number printed on the camera and listed by `robo resources discover` (required)."""
    width: int = 640
    """Colour (and depth) width, px."""
    height: int = 480
    """Colour (and depth) height, px."""
    fps: float = 30.0
    """Stream rate, frames/s (a rate the camera supports: 6, 15, 30, 60, 90)."""
    depth: bool = True
    """Stream depth too, aligned to the colour image (float32 metres)."""
    color_format: Literal["rgb8", "bgr8"] = "rgb8"
    """Pixel format asked from the camera; frames are always delivered as RGB."""
    global_time: bool = True
    """Ask the camera to stamp frames in the global time domain (device clock mapped to host time)."""
    json_preset: str = ""
    """Advanced-mode JSON preset file applied at connect (D400 series), empty = none."""
    bag_file: str = ""
    """Replay a recorded .bag instead of opening a live camera (serial then optional)."""
    timeout_ms: int = 1000
    """Longest wait for one frameset before the capture thread reports a stall, ms."""

    def __post_init__(self) -> None:
        self.serial = str(self.serial).strip()
        if not self.serial and not self.bag_file:
            raise ValueError(
                "serial is required: the camera's serial number, e.g. serial: '123622270000' "
                "(`robo resources discover` lists attached RealSense serials)"
            )
        check_range("width", self.width, 1, 4096)
        check_range("height", self.height, 1, 4096)
        check_range("fps", self.fps, 1.0, 300.0)
        check_range("timeout_ms", self.timeout_ms, 1, 60000)
