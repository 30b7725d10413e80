"""Camera base class: one background capture thread per camera, latest-frame semantics.

A driver implements three hooks, all called on the capture thread except `_open`/`_release`:

    _open()                   open the device (on connect, caller's thread)
    _grab() -> RawFrame|None  block until the next frame (None = nothing yet, try again)
    _release()                close the device (on close, after the thread stopped)

The base class stamps every frame with `seq` (this camera's counter), `t_capture` (the device clock
mapped to host time where the driver can, else host time at grab) and `t_receive` (host time the
frame reached robo), keeps the newest frame plus a short history for timestamp alignment, and counts
drops: `n_dropped` = frames overwritten before any reader saw them (slow consumer) and
`n_dropped_device` = gaps in the device's own frame numbers.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from robo.hal.resource import Health, Resource, now
from robo.spec import IMAGE_PREFIX, Feature, Spec

DEPTH_PREFIX = "observation.depth."


class CameraTimeout(RuntimeError):
    """No new frame arrived in time."""


@dataclass
class RawFrame:
    """What a driver's `_grab` returns."""

    color: np.ndarray  # (H, W, 3) uint8 RGB
    t_capture: float | None = None  # host-time capture stamp if the driver knows it
    depth: np.ndarray | None = None  # (H, W) float32 metres, aligned to color
    t_device: float | None = None  # device clock (s), in `time_domain`
    time_domain: str = "host"  # global (device->host mapped) | system | hardware | sim | media | host
    device_seq: int | None = None  # the device's frame number
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Frame:
    """One captured frame. Times are host wall-clock seconds (`robo.hal.resource.now`)."""

    camera: str
    seq: int
    color: np.ndarray
    t_capture: float
    t_receive: float
    depth: np.ndarray | None = None
    t_device: float | None = None
    time_domain: str = "host"
    device_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.t_receive - self.t_capture


class Camera(Resource):
    """Base of every camera driver. Config must have `width`, `height`, `fps`."""

    kind: ClassVar[str] = "camera"
    history_len: ClassVar[int] = 8

    def __init__(self, config: Any = None, *, name: str | None = None, cell: str | None = None) -> None:
        super().__init__(config, name=name, cell=cell)
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._latest_read = True
        self._last_read_seq = -1
        self._history: collections.deque[Frame] = collections.deque(maxlen=self.history_len)
        self._error: BaseException | None = None
        self._ended = False
        self.n_captured = 0
        self.n_delivered = 0
        self.n_dropped = 0
        self.n_dropped_device = 0
        self._prev_device_seq: int | None = None

    # ---------------------------------------------------------------- driver hooks
    def _open(self) -> None:
        """Open the device (caller's thread)."""

    def _thread_init(self) -> None:
        """Per-thread setup on the capture thread (e.g. a GL context)."""

    def _thread_exit(self) -> None:
        """Per-thread teardown on the capture thread."""

    def _grab(self) -> RawFrame | None:
        raise NotImplementedError

    def _release(self) -> None:
        """Close the device (caller's thread, after the capture thread stopped)."""

    # ---------------------------------------------------------------- lifecycle
    @property
    def width(self) -> int:
        return int(self.config.width)

    @property
    def height(self) -> int:
        return int(self.config.height)

    @property
    def fps(self) -> float:
        return float(self.config.fps)

    @property
    def has_depth(self) -> bool:
        return bool(getattr(self.config, "depth", False))

    def _connect(self) -> None:
        self._stop.clear()
        self._error = None
        self._ended = False
        self._open()
        self._thread = threading.Thread(target=self._capture_loop, name=f"cam-{self.name}", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._release()
        with self._cv:
            self._cv.notify_all()

    def _capture_loop(self) -> None:
        try:
            self._thread_init()
            while not self._stop.is_set():
                raw = self._grab()
                if raw is None:
                    continue
                self._publish(raw)
        except StopIteration:  # a finite source (video file) ended
            self._ended = True
        except BaseException as e:  # surfaced by read() and health()
            self._error = e
        finally:
            try:
                self._thread_exit()
            finally:
                with self._cv:
                    self._cv.notify_all()

    def _publish(self, raw: RawFrame) -> Frame:
        t_rx = now()
        if raw.device_seq is not None and self._prev_device_seq is not None:
            gap = raw.device_seq - self._prev_device_seq - 1
            if gap > 0:
                self.n_dropped_device += gap
        if raw.device_seq is not None:
            self._prev_device_seq = raw.device_seq
        t_cap = raw.t_capture if raw.t_capture is not None else t_rx
        with self._cv:
            frame = Frame(
                camera=self.name, seq=self.n_captured, color=raw.color, t_capture=min(t_cap, t_rx),
                t_receive=t_rx, depth=raw.depth, t_device=raw.t_device, time_domain=raw.time_domain,
                device_seq=raw.device_seq, extra=raw.extra,
            )
            self.n_captured += 1
            if not self._latest_read:
                self.n_dropped += 1
            self._latest = frame
            self._latest_read = False
            self._history.append(frame)
            self._cv.notify_all()
        return frame

    # ---------------------------------------------------------------- reading
    def read(self, timeout: float = 1.0) -> Frame:
        """The next frame newer than the last one read; waits up to `timeout` s."""
        deadline = now() + timeout
        with self._cv:
            while True:
                f = self._latest
                if f is not None and f.seq > self._last_read_seq:
                    return self._consume(f)
                self._raise_if_dead()
                remaining = deadline - now()
                if remaining <= 0:
                    raise CameraTimeout(f"camera '{self.name}': no new frame within {timeout:.2f}s")
                self._cv.wait(remaining)

    def read_latest(self, max_age_s: float | None = None) -> Frame:
        """The newest frame without waiting (may repeat the last one). Raises if none / too old."""
        with self._cv:
            f = self._latest
            if f is None:
                self._raise_if_dead()
                raise CameraTimeout(f"camera '{self.name}': no frame captured yet")
            if max_age_s is not None and now() - f.t_capture > max_age_s:
                raise CameraTimeout(f"camera '{self.name}': newest frame is {now() - f.t_capture:.3f}s old")
            return self._consume(f)

    def _consume(self, f: Frame) -> Frame:
        if f.seq > self._last_read_seq:
            self.n_delivered += 1
            self._last_read_seq = f.seq
        if f is self._latest:
            self._latest_read = True
        return f

    def history(self) -> list[Frame]:
        """The most recent frames (oldest first), for timestamp alignment."""
        with self._cv:
            return list(self._history)

    def mark_read(self, frame: Frame) -> None:
        """Tell the camera a frame obtained through `history()` was used (for drop counting)."""
        with self._cv:
            self._consume(frame)

    def _raise_if_dead(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"camera '{self.name}' capture failed: {self._error}") from self._error
        if self._ended:
            raise CameraTimeout(f"camera '{self.name}': source ended")
        if not self._connected:
            raise RuntimeError(f"camera '{self.name}' is not connected")

    def wait_first_frame(self, timeout: float = 5.0) -> Frame:
        """Block until the camera produced at least one frame (does not consume it)."""
        deadline = now() + timeout
        with self._cv:
            while self._latest is None:
                self._raise_if_dead()
                remaining = deadline - now()
                if remaining <= 0:
                    raise CameraTimeout(f"camera '{self.name}': no frame within {timeout:.1f}s of connecting")
                self._cv.wait(remaining)
            return self._latest

    # ---------------------------------------------------------------- description
    def stats(self) -> dict[str, int]:
        return {
            "captured": self.n_captured, "delivered": self.n_delivered,
            "dropped": self.n_dropped, "dropped_device": self.n_dropped_device,
        }

    def spec(self) -> Spec:
        shape = (self.height, self.width)
        feats = {f"{IMAGE_PREFIX}{self.name}": Feature((*shape, 3), "uint8", ("height", "width", "rgb"))}
        if self.has_depth:
            feats[f"{DEPTH_PREFIX}{self.name}"] = Feature(shape, "float32", ("height", "width"), "m")
        return Spec(feats)

    def health(self) -> Health:
        if not self._connected:
            return self.probe()
        m: dict[str, Any] = dict(self.stats())
        if self._error is not None:
            return Health("down", f"capture failed: {self._error}", m)
        if self._ended:
            return Health("down", "source ended", m)
        if self._latest is None:
            return Health("degraded", "no frame yet", m)
        age = now() - self._latest.t_capture
        m["age_s"] = round(age, 4)
        if self.fps > 0 and age > max(1.0, 5.0 / self.fps):
            return Health("degraded", f"newest frame is {age:.2f}s old", m)
        if self.n_dropped_device:
            return Health("degraded", f"device dropped {self.n_dropped_device} frames", m)
        return Health("ok", f"{self.n_captured} frames, {self.n_dropped} dropped by slow reader", m)

    def probe(self) -> Health:
        """Health of an unconnected camera: is the device there? (default: unknown)."""
        return Health("offline", "not connected")
