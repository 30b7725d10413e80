"""`opencv_camera`: any `cv2.VideoCapture` source on a capture thread.

Timestamps. For V4L2 devices OpenCV reports the driver's buffer timestamp (CAP_PROP_POS_MSEC, on
the kernel's CLOCK_MONOTONIC); it is mapped to host wall-clock time (`time_domain="v4l2"`), so the
capture stamp excludes USB/decoding latency. Sources without one get the host time at grab. Video
files are replayed at their frame rate like a live camera (`time_domain="media"`, `t_device` = the
position in the file), which makes a file a deterministic stand-in for a webcam in tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from robo.drivers.opencv_camera.config import OpenCVCameraConfig
from robo.hal.camera import Camera, RawFrame
from robo.hal.registry import register
from robo.hal.resource import DeviceInfo, Health, now

_MAX_DEVICE_FAILURES = 50  # consecutive failed reads of a live device before giving up


def _device_path(source: str) -> str | None:
    s = str(source).strip()
    if s.isdigit():
        return f"/dev/video{int(s)}"
    if s.startswith("/dev/"):
        return s
    return None


@register("opencv_camera")
class OpenCVCamera(Camera):
    """Webcam / V4L2 device / video file / stream URL through OpenCV."""

    config_class: ClassVar[type] = OpenCVCameraConfig
    config: OpenCVCameraConfig

    def __init__(self, config: OpenCVCameraConfig | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self._cap: cv2.VideoCapture | None = None
        self._size = (int(self.config.width), int(self.config.height))
        self._rate = float(self.config.fps)
        self._next_t = 0.0
        self._fails = 0

    # ---------------------------------------------------------------- identity
    @property
    def is_file(self) -> bool:
        p = Path(str(self.config.source))
        return _device_path(self.config.source) is None and p.is_file()

    @property
    def lease_key(self) -> str:
        dev = _device_path(self.config.source)
        if dev is not None:
            return f"v4l2:{os.path.realpath(dev)}"
        if self.is_file:
            return f"file:{Path(self.config.source).resolve()}"
        return f"opencv:{self.config.source}"

    @property
    def width(self) -> int:
        return self._size[0]

    @property
    def height(self) -> int:
        return self._size[1]

    @property
    def fps(self) -> float:
        return self._rate

    # ---------------------------------------------------------------- device
    def _open(self) -> None:
        src = str(self.config.source)
        dev = _device_path(src)
        target: Any = int(src) if src.isdigit() else src
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            hint = " (no such device)" if dev and not os.path.exists(dev) else ""
            raise RuntimeError(f"opencv_camera '{self.name}': cannot open source {src!r}{hint}")
        if not self.is_file:
            if self.config.fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.config.fourcc))
            if self.config.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
            if self.config.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
            if self.config.fps:
                cap.set(cv2.CAP_PROP_FPS, self.config.fps)
        src_w, src_h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        src_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._size = (int(self.config.width or src_w), int(self.config.height or src_h))
        self._rate = float(self.config.fps or src_fps or 30.0)
        self._src_size = (src_w, src_h)
        self._cap = cap
        self._next_t = 0.0
        self._fails = 0
        pace = self.config.pace
        self._paced = pace == "realtime" or (pace == "auto" and self.is_file)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _grab(self) -> RawFrame | None:
        cap = self._cap
        assert cap is not None
        if self._paced:
            t = time.monotonic()
            if self._next_t == 0.0:
                self._next_t = t
            if t < self._next_t:
                self._stop.wait(self._next_t - t)
                return None
            self._next_t = max(self._next_t + 1.0 / self._rate, t - 1.0 / self._rate)
        ok, img = cap.read()
        t_host = now()
        if not ok or img is None:
            if self.is_file:
                if self.config.loop:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    return None
                raise StopIteration
            self._fails += 1
            if self._fails >= _MAX_DEVICE_FAILURES:
                raise RuntimeError(f"source {self.config.source!r} stopped delivering frames")
            self._stop.wait(0.02)
            return None
        self._fails = 0
        pos_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        if self.is_file:
            idx = int(cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            return RawFrame(color=np.ascontiguousarray(img), t_capture=t_host, t_device=pos_ms / 1e3,
                            time_domain="media", device_seq=idx if idx >= 0 else None)
        t_cap, domain = t_host, "host"
        if pos_ms > 0:
            age = time.monotonic() - pos_ms / 1e3  # V4L2 buffer stamps are CLOCK_MONOTONIC
            if 0.0 <= age < 2.0:
                t_cap, domain = t_host - age, "v4l2"
        return RawFrame(color=np.ascontiguousarray(img), t_capture=t_cap, t_device=pos_ms / 1e3 or None,
                        time_domain=domain)

    # ---------------------------------------------------------------- description
    def probe(self) -> Health:
        dev = _device_path(self.config.source)
        if dev is not None:
            if os.path.exists(dev):
                return Health("offline", f"not connected ({dev} present)")
            return Health("down", f"{dev} not present")
        if self.is_file:
            return Health("offline", f"not connected (file {self.config.source})")
        if "://" in str(self.config.source):
            return Health("offline", f"not connected (stream {self.config.source})")
        return Health("down", f"source {self.config.source!r} not found")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(source=str(self.config.source), model="OpenCV VideoCapture")
        dev = _device_path(self.config.source)
        if dev:
            out["device_name"] = _v4l2_name(dev)
        if self._cap is not None:
            out.update(width=self.width, height=self.height, fps=self.fps, backend=self._cap.getBackendName())
        return out

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        """V4L2 capture nodes under /sys/class/video4linux (no device is opened)."""
        out: list[DeviceInfo] = []
        root = Path("/sys/class/video4linux")
        if not root.is_dir():
            return out
        by_id: dict[str, list[str]] = {}
        id_dir = Path("/dev/v4l/by-id")
        if id_dir.is_dir():
            for link in id_dir.iterdir():
                by_id.setdefault(os.path.realpath(link), []).append(str(link))
        for node in sorted(root.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0):
            try:
                if (node / "index").read_text().strip() not in ("", "0"):
                    continue  # metadata node of a device that has a capture node already
            except OSError:
                pass
            dev = f"/dev/{node.name}"
            out.append(DeviceInfo("opencv_camera", dev, _v4l2_name(dev), {"by_id": by_id.get(dev, [])}))
        return out


def _v4l2_name(dev: str) -> str:
    try:
        return (Path("/sys/class/video4linux") / Path(dev).name / "name").read_text().strip()
    except OSError:
        return ""
