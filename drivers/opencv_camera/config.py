"""Configuration of the `opencv_camera` driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robo.config import check_range


@dataclass
class OpenCVCameraConfig:
    """Any `cv2.VideoCapture` source: a V4L2 index or /dev/videoN, a video file, a stream URL."""

    source: str = "0"
    """Device index ("0"), device path (/dev/video0, /dev/v4l/by-id/...), video file or URL."""
    width: int = 0
    """Requested width, px (0 = the source's own)."""
    height: int = 0
    """Requested height, px (0 = the source's own)."""
    fps: float = 0.0
    """Requested rate, frames/s (0 = the source's own). Files are replayed at this rate."""
    fourcc: str = ""
    """Requested pixel format of a live device, e.g. MJPG (empty = driver default)."""
    pace: Literal["auto", "realtime", "none"] = "auto"
    """auto: replay files at their frame rate like a live camera, read devices as they come;
    realtime: always pace to fps; none: read as fast as the source allows."""
    loop: bool = False
    """Restart a video file at its end (otherwise the camera reports 'source ended')."""

    def __post_init__(self) -> None:
        if str(self.source).strip() == "":
            raise ValueError("source is required: a device index, /dev/videoN path, video file or URL")
        check_range("width", self.width, 0, 8192)
        check_range("height", self.height, 0, 8192)
        check_range("fps", self.fps, 0.0, 1000.0)
        if self.fourcc and len(self.fourcc) != 4:
            raise ValueError(f"fourcc={self.fourcc!r} must be 4 characters, e.g. MJPG")
