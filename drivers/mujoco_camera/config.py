"""Configuration of the `mujoco_camera` driver."""

from __future__ import annotations

from dataclasses import dataclass

from robo.config import check_range


@dataclass
class MujocoCameraConfig:
    """A camera of a MuJoCo model, rendered offscreen (EGL) on its own capture thread."""

    camera: str = "front"
    """Name of the MJCF camera in the wired sim's model."""
    width: int = 64
    """Image width, px (keep tiny on CPU: ~50 ms per frame with primitive geometry)."""
    height: int = 64
    """Image height, px."""
    fps: float = 10.0
    """Capture rate, frames per second of wall-clock time."""
    depth: bool = False
    """Also render depth (float32 metres)."""

    def __post_init__(self) -> None:
        if not self.camera:
            raise ValueError("camera must name an MJCF camera")
        check_range("width", self.width, 8, 4096)
        check_range("height", self.height, 8, 4096)
        check_range("fps", self.fps, 0.1, 1000.0)
