"""RealSense driver through librealsense's own `rs.software_device` (no camera, no mock).

A software device with a depth and a colour sensor is fed synthetic frames stamped in the
GLOBAL_TIME domain; the driver opens its sensors, syncs and aligns through librealsense exactly as
for a live camera.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2")

from robo.config import ConfigError  # noqa: E402
from robo.drivers.realsense import RealSenseCamera, RealSenseConfig  # noqa: E402
from robo.hal.cell import Cell  # noqa: E402
from robo.hal.testing import CameraContract  # noqa: E402

W, H, FPS = 48, 32, 30
SERIAL = "SW0001"
DEPTH_M = 0.75  # the synthetic scene is a wall at 0.75 m


class SoftwareRealSense:
    """A librealsense software device (depth + colour sensors) and a thread feeding it frames."""

    def __init__(self, serial: str = SERIAL, *, skip_every: int = 0) -> None:
        self.dev = rs.software_device()
        self.dev.register_info(rs.camera_info.serial_number, serial)
        self.dev.register_info(rs.camera_info.name, "Intel RealSense D435 (software device)")
        self.depth_sensor = self.dev.add_sensor("Stereo Module")
        self.color_sensor = self.dev.add_sensor("RGB Camera")
        self.depth_profile = self.depth_sensor.add_video_stream(self._stream(rs.stream.depth, rs.format.z16, 2, 0))
        self.depth_sensor.add_read_only_option(rs.option.depth_units, 0.001)
        self.color_profile = self.color_sensor.add_video_stream(self._stream(rs.stream.color, rs.format.rgb8, 3, 1))
        ident = rs.extrinsics()
        ident.rotation = [1, 0, 0, 0, 1, 0, 0, 0, 1]
        ident.translation = [0.0, 0.0, 0.0]
        self.depth_profile.register_extrinsics_to(self.color_profile, ident)
        self.skip_every = skip_every
        self.sent: list[tuple[int, float]] = []  # (frame number, global timestamp ms)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _stream(kind, fmt, bpp: int, uid: int):
        intr = rs.intrinsics()
        intr.width, intr.height, intr.ppx, intr.ppy, intr.fx, intr.fy = W, H, W / 2, H / 2, 40.0, 40.0
        intr.model = rs.distortion.none
        intr.coeffs = [0.0] * 5
        vs = rs.video_stream()
        vs.type, vs.uid, vs.index, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = kind, uid, 0, W, H, FPS, bpp, fmt
        vs.intrinsics = intr
        return vs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        depth = np.full((H, W), int(DEPTH_M * 1000), np.uint16)
        color = np.zeros((H, W, 3), np.uint8)
        n = 1
        while not self._stop.is_set():
            if self.skip_every and n % self.skip_every == 0:  # the "camera" loses a frame
                n += 1
            t_ms = time.time() * 1e3 - 5.0  # exposure 5 ms before the host sees it
            color[:] = (n % 250, 2 * n % 250, 7)
            for sensor, profile, pixels, bpp in (
                (self.depth_sensor, self.depth_profile, depth, 2),
                (self.color_sensor, self.color_profile, color, 3),
            ):
                f = rs.software_video_frame()
                f.pixels, f.bpp, f.stride = pixels, bpp, bpp * W
                f.timestamp, f.domain, f.frame_number = t_ms, rs.timestamp_domain.global_time, n
                f.profile = profile.as_video_stream_profile()
                if bpp == 2:
                    f.depth_units = 0.001
                sensor.on_video_frame(f)
            self.sent.append((n, t_ms))
            n += 1
            time.sleep(1.0 / FPS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@pytest.fixture
def software_camera():
    sw = SoftwareRealSense()
    cam = RealSenseCamera(RealSenseConfig(serial=SERIAL, width=W, height=H, fps=FPS), name="wrist", device=sw.dev)
    cam.connect()
    sw.start()
    yield cam, sw
    cam.close()
    sw.stop()


def test_colour_and_aligned_depth_with_global_timestamps(software_camera):
    cam, sw = software_camera
    frames = [cam.read(timeout=3.0) for _ in range(6)]
    sent = dict(sw.sent)
    prev = None
    for f in frames:
        assert f.color.shape == (H, W, 3) and f.color.dtype == np.uint8
        assert f.depth is not None and f.depth.shape == (H, W) and f.depth.dtype == np.float32
        # aligned depth: the wall is at DEPTH_M wherever the projection landed (centre always does)
        assert f.depth[H // 2, W // 2] == pytest.approx(DEPTH_M, abs=1e-3)
        assert np.all((f.depth == 0) | (np.abs(f.depth - DEPTH_M) < 1e-3))
        # device frame number and colour content belong to the same synthetic frame
        n = f.device_seq
        assert tuple(f.color[0, 0]) == (n % 250, 2 * n % 250, 7)
        assert f.extra["depth_frame_number"] == n
        # capture time is the device's global-time stamp (host clock), not the arrival time
        assert f.time_domain == "global"
        assert f.t_capture == pytest.approx(sent[n] / 1e3, abs=1e-6)
        assert 0.0 <= f.t_receive - f.t_capture < 1.0
        if prev is not None:
            assert f.seq > prev.seq and f.device_seq > prev.device_seq and f.t_capture > prev.t_capture
        prev = f
    md = cam.metadata()
    assert md["serial"] == SERIAL and md["intrinsics"]["fx"] == pytest.approx(40.0)
    assert cam.spec()["observation.depth.wrist"].shape == (H, W)


def test_device_frame_gaps_are_counted():
    sw = SoftwareRealSense(skip_every=4)
    cam = RealSenseCamera(RealSenseConfig(serial=SERIAL, width=W, height=H, fps=FPS), name="c", device=sw.dev)
    with cam:
        sw.start()
        try:
            for _ in range(10):
                cam.read(timeout=3.0)
        finally:
            sw.stop()
    assert cam.n_dropped_device >= 2  # every 4th frame number was skipped by the "camera"


def test_missing_serial_and_unattached_serial_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="serial is required"):
        RealSenseConfig()
    cell = tmp_path / "cell.yaml"
    cell.write_text("resources:\n  wrist:\n    type: realsense\n    config: {width: 640}\n")
    with pytest.raises(ConfigError, match=r"cell.yaml: resources.wrist.config: serial is required"):
        Cell.load(cell)
    cam = RealSenseCamera(RealSenseConfig(serial="999999999999"), name="scene")
    with pytest.raises(RuntimeError, match="no camera with serial 999999999999 attached"):
        cam.connect()
    assert cam.health().status == "down" and "not attached" in cam.health().detail


def test_wrong_stream_settings_name_what_is_available():
    sw = SoftwareRealSense()
    cam = RealSenseCamera(RealSenseConfig(serial=SERIAL, width=640, height=480, fps=FPS), name="c", device=sw.dev)
    with pytest.raises(RuntimeError, match=r"no color stream 640x480@30.*available: .*48x32@30"):
        cam.connect()


class TestRealSenseContract(CameraContract):
    def make_resource(self):
        self.sw = SoftwareRealSense()
        cfg = RealSenseConfig(serial=SERIAL, width=W, height=H, fps=FPS)
        return RealSenseCamera(cfg, name="rs", device=self.sw.dev)

    def start_source(self, resource) -> None:
        self.sw.start()

    def stop_source(self, resource) -> None:
        self.sw.stop()
