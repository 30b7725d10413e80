"""OpenCV camera reading a generated video file like a live camera."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from robo.drivers.opencv_camera import OpenCVCamera, OpenCVCameraConfig
from robo.hal.camera import CameraTimeout
from robo.hal.testing import CameraContract

W, H, FPS, N = 32, 24, 40, 48


def write_video(path, n: int = N, fps: int = FPS) -> None:
    """An MJPEG .avi whose frame i is uniformly grey level 5*i (so a frame tells its index)."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert out.isOpened()
    for i in range(n):
        out.write(np.full((H, W, 3), 5 * i, np.uint8))
    out.release()


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path)
    return path


def index_of(frame) -> int:
    return int(round(float(frame.color.mean()) / 5))


def test_slow_consumer_sees_monotonic_timestamps_and_counted_drops(video):
    cam = OpenCVCamera(OpenCVCameraConfig(source=str(video)), name="scene")
    cam.connect()
    assert (cam.width, cam.height, cam.fps) == (W, H, FPS)
    got = []
    try:
        while True:
            try:
                got.append(cam.read(timeout=1.0))
            except CameraTimeout:
                break  # the file ended
            time.sleep(3.0 / FPS)  # the consumer is 3x slower than the camera
    finally:
        cam.close()
    assert len(got) >= 5
    for prev, f in zip(got, got[1:]):
        assert f.seq > prev.seq
        assert f.t_capture > prev.t_capture and f.t_receive > prev.t_receive
        assert f.t_device > prev.t_device  # position in the file
    for f in got:
        assert f.t_receive >= f.t_capture
        assert f.time_domain == "media" and f.color.shape == (H, W, 3)
        assert index_of(f) == f.device_seq  # the pixels are the frame the stamps describe
    # every frame of the file was captured; the ones the reader never saw are counted as dropped
    assert cam.n_captured == N
    assert cam.n_delivered == len(got)
    assert cam.n_dropped == N - len(got) > N // 2
    # frames were replayed at the file's rate, like a live camera
    span = got[-1].t_capture - got[0].t_capture
    nominal = (got[-1].device_seq - got[0].device_seq) / FPS
    assert 0.8 * nominal <= span <= 2.0 * nominal  # not as fast as the file can be decoded
    assert cam.health().status == "offline"


def test_fast_consumer_gets_every_frame_and_source_end_is_reported(tmp_path):
    path = tmp_path / "slow.avi"
    write_video(path, n=30, fps=20)
    cam = OpenCVCamera(OpenCVCameraConfig(source=str(path), width=16, height=12), name="scene")
    with cam:
        seen = []
        with pytest.raises(CameraTimeout, match="source ended"):
            while True:
                seen.append(cam.read(timeout=1.0))
        assert cam.health().status == "down" and "ended" in cam.health().detail
    idx = [f.device_seq for f in seen]
    assert idx == sorted(set(idx)) and idx[-1] == 29
    # a reader waiting on the camera sees every frame (a descheduled test process may lose one)
    assert cam.n_captured == 30 and cam.n_delivered + cam.n_dropped == 30 and cam.n_dropped <= 1
    assert seen[0].color.shape == (12, 16, 3)  # resized to the configured size


def test_loop_restarts_the_file(tmp_path):
    path = tmp_path / "short.avi"
    write_video(path, n=5, fps=100)
    with OpenCVCamera(OpenCVCameraConfig(source=str(path), loop=True), name="c") as cam:
        idx = [cam.read(timeout=1.0).device_seq for _ in range(12)]
    assert max(idx) == 4 and idx.count(0) >= 2


def test_unopenable_sources_fail_clearly(tmp_path):
    cam = OpenCVCamera(OpenCVCameraConfig(source="/dev/video99"), name="c")
    assert cam.health().status == "down" and "/dev/video99 not present" in cam.health().detail
    with pytest.raises(RuntimeError, match=r"cannot open source '/dev/video99' \(no such device\)"):
        cam.connect()
    assert cam.lease_key == "v4l2:/dev/video99"
    with pytest.raises(ValueError, match="source is required"):
        OpenCVCameraConfig(source="")


class TestOpenCVCameraContract(CameraContract):
    @pytest.fixture(autouse=True)
    def _video(self, tmp_path):
        self.path = tmp_path / "contract.avi"
        write_video(self.path)

    def make_resource(self):
        return OpenCVCamera(OpenCVCameraConfig(source=str(self.path), width=W, height=H), name="cv")
