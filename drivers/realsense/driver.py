"""`realsense`: Intel RealSense colour + aligned depth through pyrealsense2, one camera per serial.

Pipeline (the same for a live camera, a `.bag` replay and an `rs.software_device`):

    device (by serial) -> sensors.open(colour, depth profiles) -> rs.syncer -> rs.align(colour)
                       -> capture thread -> latest frame (+ drop counters from frame numbers)

Sensors are opened directly (not through `rs.pipeline`), which is what lets a software device or a
playback device stand in for a camera without any mock. With `global_time` the camera stamps frames
in the GLOBAL_TIME domain — the device clock mapped to host time by librealsense — and that stamp
becomes `Frame.t_capture` (`time_domain="global"`); SYSTEM_TIME stamps are host time already; a
HARDWARE_CLOCK stamp is kept in `t_device` and the host time at arrival is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from robo.drivers.realsense.config import RealSenseConfig
from robo.hal.camera import Camera, RawFrame
from robo.hal.registry import register
from robo.hal.resource import DeviceInfo, Health


def _rs() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise RuntimeError(f"the realsense driver needs pyrealsense2 (pip install 'robo[realsense]'): {e}") from e
    return rs


def _info(dev: Any, field: str) -> str:
    rs = _rs()
    key = getattr(rs.camera_info, field)
    try:
        return str(dev.get_info(key)) if dev.supports(key) else ""
    except RuntimeError:
        return ""


@register("realsense")
class RealSenseCamera(Camera):
    """RealSense D400/D500 camera (colour + depth)."""

    config_class: ClassVar[type] = RealSenseConfig
    config: RealSenseConfig

    def __init__(
        self, config: RealSenseConfig | None = None, *, name: str | None = None, cell: str | None = None,
        device: Any = None,
    ) -> None:
        """`device`: an already-created `rs.device` (e.g. a `rs.software_device`) used instead of
        looking the serial up among attached cameras."""
        super().__init__(config, name=name, cell=cell)
        self._given_device = device
        self._dev: Any = None
        self._sensors: list[Any] = []
        self._syncer: Any = None
        self._align: Any = None
        self._depth_scale = 0.001
        self._intrinsics: dict[str, float] = {}
        self.n_incomplete = 0

    @property
    def lease_key(self) -> str:
        if self.config.bag_file and not self.config.serial:
            return f"realsense-bag:{Path(self.config.bag_file).resolve()}"
        return f"realsense:{self.config.serial}"

    # ---------------------------------------------------------------- device
    def _find_device(self) -> Any:
        rs = _rs()
        if self._given_device is not None:
            return self._given_device
        if self.config.bag_file:
            path = Path(self.config.bag_file)
            if not path.is_file():
                raise FileNotFoundError(f"realsense '{self.name}': bag file {path} not found")
            self._ctx = rs.context()
            dev = self._ctx.load_device(str(path))
            dev.as_playback().set_real_time(True)
            return dev
        self._ctx = rs.context()
        attached = {_info(d, "serial_number"): d for d in self._ctx.query_devices()}
        if self.config.serial not in attached:
            have = ", ".join(sorted(attached)) or "none"
            raise RuntimeError(
                f"realsense '{self.name}': no camera with serial {self.config.serial} attached (attached: {have})"
            )
        return attached[self.config.serial]

    def _open(self) -> None:
        rs = _rs()
        c = self.config
        dev = self._find_device()
        if c.serial and self._given_device is not None:
            got = _info(dev, "serial_number")
            if got and got != c.serial:
                raise RuntimeError(f"realsense '{self.name}': device has serial {got}, config says {c.serial}")
        if c.json_preset:
            preset = Path(c.json_preset).read_text()
            rs.rs400_advanced_mode(dev).load_json(preset)
        want = {rs.stream.color: getattr(rs.format, c.color_format)}
        if c.depth:
            want[rs.stream.depth] = rs.format.z16
        chosen: dict[Any, tuple[Any, Any]] = {}  # stream -> (sensor, profile)
        available: list[str] = []
        for sensor in dev.query_sensors():
            for p in sensor.get_stream_profiles():
                if not p.is_video_stream_profile():
                    continue
                vp = p.as_video_stream_profile()
                st = p.stream_type()
                available.append(f"{st.name} {vp.width()}x{vp.height()}@{p.fps()} {p.format().name}")
                if st in want and st not in chosen and p.format() == want[st] and vp.width() == c.width \
                        and vp.height() == c.height and abs(p.fps() - c.fps) < 0.5:
                    chosen[st] = (sensor, p)
        missing = [s.name for s in want if s not in chosen]
        if missing:
            raise RuntimeError(
                f"realsense '{self.name}': no {missing[0]} stream {c.width}x{c.height}@{c.fps:g} "
                f"{want[getattr(rs.stream, missing[0])].name} "
                f"(available: {', '.join(sorted(set(available))) or 'none'})"
            )
        by_sensor: dict[int, tuple[Any, list[Any]]] = {}
        for sensor, p in chosen.values():
            by_sensor.setdefault(id(sensor), (sensor, []))[1].append(p)
        self._syncer = rs.syncer(2)
        self._sensors = []
        try:
            for sensor, profiles in by_sensor.values():
                if c.global_time and sensor.supports(rs.option.global_time_enabled):
                    sensor.set_option(rs.option.global_time_enabled, 1)
                if rs.stream.depth in [p.stream_type() for p in profiles]:
                    if sensor.supports(rs.option.depth_units):
                        self._depth_scale = float(sensor.get_option(rs.option.depth_units))
                sensor.open(profiles if len(profiles) > 1 else profiles[0])
                self._sensors.append(sensor)
            for sensor in self._sensors:
                sensor.start(self._syncer)
        except Exception:
            self._release()
            raise
        color_vp = chosen[rs.stream.color][1].as_video_stream_profile()
        intr = color_vp.get_intrinsics()
        self._intrinsics = {"fx": intr.fx, "fy": intr.fy, "ppx": intr.ppx, "ppy": intr.ppy,
                            "width": intr.width, "height": intr.height}
        self._align = rs.align(rs.stream.color) if c.depth else None
        self._dev = dev
        self.n_incomplete = 0

    def _release(self) -> None:
        for sensor in self._sensors:
            for op in (sensor.stop, sensor.close):
                try:
                    op()
                except RuntimeError:
                    pass
        self._sensors = []
        self._syncer = None
        self._align = None
        self._dev = None

    def _grab(self) -> RawFrame | None:
        rs = _rs()
        ok, fs = self._syncer.try_wait_for_frames(self.config.timeout_ms)
        if not ok:
            return None
        if self.config.depth:
            if fs.size() < 2 or not fs.get_depth_frame() or not fs.get_color_frame():
                self.n_incomplete += 1
                return None
            fs = self._align.process(fs)
        cf = fs.get_color_frame()
        if not cf:
            self.n_incomplete += 1
            return None
        color = np.asanyarray(cf.get_data()).copy()
        if self.config.color_format == "bgr8":
            color = color[..., ::-1].copy()
        depth = None
        extra: dict[str, Any] = {}
        if self.config.depth:
            df = fs.get_depth_frame()
            depth = np.asanyarray(df.get_data()).astype(np.float32) * np.float32(self._depth_scale)
            extra = {"depth_frame_number": int(df.get_frame_number()), "depth_timestamp_ms": float(df.get_timestamp())}
        ts_ms = float(cf.get_timestamp())
        dom = cf.get_frame_timestamp_domain()
        if dom == rs.timestamp_domain.global_time:
            t_cap, name = ts_ms / 1e3, "global"
        elif dom == rs.timestamp_domain.system_time:
            t_cap, name = ts_ms / 1e3, "system"
        else:
            t_cap, name = None, "hardware"
        return RawFrame(color=color, t_capture=t_cap, depth=depth, t_device=ts_ms / 1e3, time_domain=name,
                        device_seq=int(cf.get_frame_number()), extra=extra)

    # ---------------------------------------------------------------- description
    def health(self) -> Health:
        h = super().health()
        if self._connected:
            h.metrics["incomplete"] = self.n_incomplete
        return h

    def probe(self) -> Health:
        if self.config.bag_file and not self.config.serial:
            ok = Path(self.config.bag_file).is_file()
            return Health("offline" if ok else "down", f"bag {self.config.bag_file} {'present' if ok else 'not found'}")
        try:
            serials = [d.id for d in self.discover()]
        except RuntimeError as e:
            return Health("down", str(e))
        if self.config.serial in serials:
            return Health("offline", f"not connected (serial {self.config.serial} attached)")
        return Health("down", f"serial {self.config.serial} not attached (attached: {', '.join(serials) or 'none'})")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(serial=self.config.serial, model="Intel RealSense")
        if self._dev is not None:
            out.update(name=_info(self._dev, "name"), firmware=_info(self._dev, "firmware_version"),
                       depth_scale_m=self._depth_scale, intrinsics=self._intrinsics)
        return out

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        rs = _rs()
        out = []
        for d in rs.context().query_devices():
            out.append(DeviceInfo(
                "realsense", _info(d, "serial_number"), _info(d, "name"),
                {"firmware": _info(d, "firmware_version"), "usb": _info(d, "usb_type_descriptor"),
                 "product_line": _info(d, "product_line")},
            ))
        return out
