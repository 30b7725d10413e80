"""Timestamp alignment and the capture-thread base class."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from robo.hal.align import AlignmentError, CameraGroup, align_frames
from robo.hal.camera import Camera, Frame, RawFrame


def frame(cam: str, seq: int, t: float) -> Frame:
    return Frame(camera=cam, seq=seq, color=np.zeros((2, 2, 3), np.uint8), t_capture=t, t_receive=t + 0.01)


def test_align_picks_nearest_frames_to_the_newest_common_instant():
    a = [frame("a", i, 10.0 + 0.033 * i) for i in range(5)]  # 30 Hz, newest 10.132
    b = [frame("b", i, 10.005 + 0.05 * i) for i in range(3)]  # 20 Hz, newest 10.105
    out = align_frames({"a": a, "b": b}, tolerance_s=0.02)
    assert out["b"].seq == 2  # the newest common instant is b's newest frame
    assert out["a"].seq == 3  # 10.099 is nearest to 10.105
    with pytest.raises(AlignmentError, match=r"camera 'a' has no frame within 1.0 ms .*6.0 ms away"):
        align_frames({"a": a, "b": b}, tolerance_s=0.001)
    with pytest.raises(AlignmentError, match="'b' has no frames"):
        align_frames({"a": a, "b": []}, tolerance_s=1.0)


@dataclass
class SynthConfig:
    width: int = 4
    height: int = 3
    fps: float = 100.0
    fail_after: int = -1


class SynthCamera(Camera):
    """A camera whose device is a counter; stamps are host time minus a fixed 2 ms exposure."""

    config_class = SynthConfig
    type_name = "synth"

    def _grab(self) -> RawFrame | None:
        if self._stop.wait(1.0 / self.config.fps):
            return None
        n = self.n_captured
        if n == self.config.fail_after:
            raise OSError("USB disconnected")
        img = np.full((self.config.height, self.config.width, 3), n % 256, np.uint8)
        return RawFrame(color=img, t_capture=time.time() - 0.002, device_seq=n, time_domain="global")

    def spec(self):
        return super().spec()


def test_latest_frame_semantics_and_drop_counter():
    cam = SynthCamera(name="s")
    with cam:
        f1 = cam.read(timeout=1.0)
        time.sleep(0.1)  # ~10 frames pass unread
        f2 = cam.read(timeout=1.0)
        assert f2.seq > f1.seq + 3
        assert cam.read_latest().seq >= f2.seq  # no waiting, may repeat
        assert f2.t_receive - f2.t_capture == pytest.approx(0.002, abs=0.01)
    s = cam.stats()
    assert s["delivered"] + s["dropped"] <= s["captured"] <= s["delivered"] + s["dropped"] + 1
    assert s["dropped"] >= 3


def test_capture_errors_reach_the_reader_and_health():
    cam = SynthCamera(SynthConfig(fail_after=3), name="s")
    cam.connect()
    try:
        with pytest.raises(RuntimeError, match="capture failed: USB disconnected"):
            for _ in range(10):
                cam.read(timeout=1.0)
        assert cam.health().status == "down"
    finally:
        cam.close()


def test_camera_group_reads_aligned_sets_in_order():
    a, b = SynthCamera(name="a"), SynthCamera(SynthConfig(fps=50.0), name="b")
    with a, b:
        g = CameraGroup({"a": a, "b": b}, tolerance_s=0.015)
        sets, refs = [], []
        for _ in range(4):
            sets.append(g.read(timeout=2.0))
            refs.append(g.last_t_ref)
    for s, t_ref in zip(sets, refs):
        assert abs(s["a"].t_capture - s["b"].t_capture) <= 0.015
        assert abs(s["a"].t_capture - t_ref) <= 0.015 and abs(s["b"].t_capture - t_ref) <= 0.015
    assert all(t1 > t0 for t0, t1 in zip(refs, refs[1:]))  # every read is a newer instant
    with pytest.raises(RuntimeError, match="camera 'c' is not connected"):
        CameraGroup({"c": SynthCamera(name="c")}).read(timeout=0.05)
