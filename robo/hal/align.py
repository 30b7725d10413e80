"""Multi-camera observations aligned by capture timestamp.

    group = CameraGroup({"wrist": cam1, "scene": cam2}, tolerance_s=0.02)
    frames = group.read(timeout=1.0)           # {name: Frame}, all within tolerance of one instant
    obs = group.observation(frames)            # {"observation.images.wrist": (H, W, 3) uint8, ...}

The reference instant is the newest time every camera has reached (the minimum over cameras of
their newest capture time); for each camera the frame nearest that instant is taken from its short
history. If some camera has no frame within `tolerance_s`, the group waits for newer frames until
`timeout` and then raises `AlignmentError` naming the camera and its skew.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from robo.hal.camera import DEPTH_PREFIX, Camera, CameraTimeout, Frame
from robo.hal.resource import now
from robo.spec import IMAGE_PREFIX


class AlignmentError(RuntimeError):
    """Camera frames could not be aligned within the tolerance."""


def align_frames(
    histories: Mapping[str, Sequence[Frame]], *, tolerance_s: float, t_ref: float | None = None
) -> dict[str, Frame]:
    """Pick one frame per camera, all within `tolerance_s` of `t_ref`.

    `histories`: camera name -> recent frames (any order). `t_ref` defaults to the minimum over
    cameras of the newest capture time. Raises AlignmentError naming the worst camera.
    """
    if tolerance_s < 0:
        raise ValueError(f"tolerance_s={tolerance_s} must be >= 0")
    if not histories:
        return {}
    for name, hist in histories.items():
        if not hist:
            raise AlignmentError(f"camera '{name}' has no frames to align")
    if t_ref is None:
        t_ref = min(max(f.t_capture for f in hist) for hist in histories.values())
    out: dict[str, Frame] = {}
    worst: tuple[float, str] = (-1.0, "")
    for name, hist in histories.items():
        best = min(hist, key=lambda f: abs(f.t_capture - t_ref))
        skew = abs(best.t_capture - t_ref)
        if skew > worst[0]:
            worst = (skew, name)
        out[name] = best
    if worst[0] > tolerance_s:
        raise AlignmentError(
            f"camera '{worst[1]}' has no frame within {tolerance_s * 1e3:.1f} ms of t={t_ref:.3f} "
            f"(nearest is {worst[0] * 1e3:.1f} ms away)"
        )
    return out


class CameraGroup:
    """Several cameras read as one timestamp-aligned observation."""

    def __init__(self, cameras: Mapping[str, Camera], *, tolerance_s: float = 0.02) -> None:
        if tolerance_s < 0:
            raise ValueError(f"tolerance_s={tolerance_s} must be >= 0")
        self.cameras = dict(cameras)
        self.tolerance_s = tolerance_s
        self._last_ref = -np.inf
        self.last_t_ref = float("nan")  # the instant the last read was aligned to (host time, s)
        self.n_misaligned = 0  # alignment attempts that had to wait for newer frames

    def read(self, timeout: float = 1.0) -> dict[str, Frame]:
        """Frames from every camera, aligned to one instant newer than the previous read's."""
        deadline = now() + timeout
        for cam in self.cameras.values():
            cam.wait_first_frame(timeout=max(0.0, deadline - now()))
        while True:
            hist = {n: c.history() for n, c in self.cameras.items()}
            t_ref = min(max(f.t_capture for f in h) for h in hist.values()) if all(hist.values()) else None
            if t_ref is not None and t_ref > self._last_ref:
                try:
                    frames = align_frames(hist, tolerance_s=self.tolerance_s, t_ref=t_ref)
                except AlignmentError:
                    self.n_misaligned += 1
                    if now() >= deadline:
                        raise
                else:
                    self._last_ref = self.last_t_ref = t_ref
                    for n, f in frames.items():
                        self.cameras[n].mark_read(f)
                    return frames
            if now() >= deadline:
                raise CameraTimeout(f"cameras {sorted(self.cameras)}: no new aligned frames within {timeout:.2f}s")
            # wait for any camera to produce something newer
            slowest = min(self.cameras.values(), key=lambda c: max((f.t_capture for f in c.history()), default=0))
            try:
                slowest.read(timeout=max(0.001, min(0.1, deadline - now())))
            except CameraTimeout:
                pass

    @staticmethod
    def observation(frames: Mapping[str, Frame]) -> dict[str, np.ndarray]:
        """Flat observation dict (robo.spec keys) from aligned frames."""
        obs: dict[str, np.ndarray] = {}
        for name, f in frames.items():
            obs[f"{IMAGE_PREFIX}{name}"] = f.color
            if f.depth is not None:
                obs[f"{DEPTH_PREFIX}{name}"] = f.depth
        return obs

    @staticmethod
    def timestamps(frames: Mapping[str, Frame]) -> dict[str, float]:
        """{"<cam>.t_capture": ..., "<cam>.t_receive": ...} for recording beside the observation."""
        out: dict[str, float] = {}
        for name, f in frames.items():
            out[f"{name}.t_capture"] = f.t_capture
            out[f"{name}.t_receive"] = f.t_receive
        return out
