"""3Dconnexion SpaceMouse teleop through hidapi: `type: spacemouse`.

HID input reports (3Dconnexion format, little-endian int16 axes, about +-350 full scale):

    id 1, 7 bytes:   x, y, z                    (older devices; rotation comes in report 2)
    id 1, 13 bytes:  x, y, z, rx, ry, rz        (SpaceMouse Compact / Wireless / Enterprise)
    id 2, 7 bytes:   rx, ry, rz
    id 3:            button bitmask (bit 0 left, bit 1 right)

A reader thread passes every report to `feed_report(bytes)`, the device boundary (tests feed
reports there). The puck springs back to zero, so motion needs a hand on it; the left button
toggles the gripper and the right button toggles the enable latch (start enabled by default).
On Linux the user needs read access to the hidraw node, e.g. a udev rule
`KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0666"` in /etc/udev/rules.d/99-spacemouse.rules.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robo.config import check_range
from robo.hal.registry import register
from robo.hal.resource import DeviceInfo, Health, now
from robo.teleop.base import TeleopCommand, TeleopDevice

VENDOR_3DCONNEXION = 0x256F
VENDOR_LOGITECH = 0x046D  # older SpaceNavigator / SpaceMouse Pro units
KNOWN_VENDORS = (VENDOR_3DCONNEXION, VENDOR_LOGITECH)


@dataclass
class SpaceMouseConfig:
    """A 3Dconnexion SpaceMouse over USB (or its wireless receiver)."""

    vendor_id: int = 0
    """USB vendor id (0 = any 3Dconnexion device: 0x256f, or 0x046d products named Space*)."""
    product_id: int = 0
    """USB product id (0 = first found)."""
    path: str = ""
    """hidraw path to open instead of searching (e.g. /dev/hidraw3)."""
    full_scale: float = 350.0
    """Raw axis value that maps to full speed."""
    deadzone: float = 0.05
    """Normalised deflection below this is zero."""
    axis_map: tuple[int, int, int, int, int, int] = (1, 0, 2, 4, 3, 5)
    """Device axis (0..5 = x, y, z, rx, ry, rz) driving vx, vy, vz, wx, wy, wz."""
    axis_signs: tuple[float, float, float, float, float, float] = (-1.0, -1.0, -1.0, -1.0, -1.0, -1.0)
    """Sign per twist component (device y points at the user, z down)."""
    start_enabled: bool = True
    """Start enabled; the right button toggles."""
    gripper_button: int = 0
    """Button bit that toggles the gripper."""
    enable_button: int = 1
    """Button bit that toggles the enable latch."""

    def __post_init__(self) -> None:
        check_range("full_scale", self.full_scale, 1.0, 32767.0)
        check_range("deadzone", self.deadzone, 0.0, 0.9)
        if sorted(self.axis_map) != [0, 1, 2, 3, 4, 5]:
            raise ValueError(f"axis_map={self.axis_map} must be a permutation of 0..5")


@register("spacemouse")
class SpaceMouseTeleop(TeleopDevice):
    """6-DoF end-effector teleop from a SpaceMouse."""

    config_class: ClassVar[type] = SpaceMouseConfig
    config: SpaceMouseConfig

    def __init__(self, config: SpaceMouseConfig | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self._raw = np.zeros(6)
        self._buttons = 0
        self._lock = threading.Lock()
        self._dev: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._info: dict[str, Any] = {}
        self.n_reports = 0
        self._error: BaseException | None = None

    @property
    def lease_key(self) -> str:
        if self.config.path:
            return f"hid:{self.config.path}"
        return f"spacemouse:{self.config.vendor_id:04x}:{self.config.product_id:04x}"

    # ---------------------------------------------------------------- HID boundary
    def feed_report(self, report: bytes | list[int]) -> None:
        """Decode one raw HID input report into the device state."""
        data = bytes(report)
        if not data:
            return
        rid = data[0]
        with self._lock:
            if rid == 1 and len(data) >= 13:
                self._raw[:] = struct.unpack("<6h", data[1:13])
            elif rid == 1 and len(data) >= 7:
                self._raw[:3] = struct.unpack("<3h", data[1:7])
            elif rid == 2 and len(data) >= 7:
                self._raw[3:] = struct.unpack("<3h", data[1:7])
            elif rid == 3 and len(data) >= 2:
                buttons = int.from_bytes(data[1:], "little")
                pressed = buttons & ~self._buttons
                self._buttons = buttons
                if pressed & (1 << self.config.gripper_button):
                    self.toggle_gripper()
                if pressed & (1 << self.config.enable_button):
                    self.toggle_enabled()
            else:
                return
            self.n_reports += 1
            self._t_input = now()

    def _read(self) -> TeleopCommand:
        c = self.config
        with self._lock:
            raw = self._raw.copy()
        norm = np.clip(raw / c.full_scale, -1.0, 1.0)
        twist = np.array([c.axis_signs[i] * norm[c.axis_map[i]] for i in range(6)])
        mag = np.abs(twist)
        twist = np.where(mag < c.deadzone, 0.0, np.sign(twist) * (mag - c.deadzone) / (1.0 - c.deadzone))
        return TeleopCommand("ee_delta", twist, None, self.gripper, self.enabled, self._take_events(), self._t_input)

    # ---------------------------------------------------------------- device
    def _connect(self) -> None:
        try:
            import hid
        except ImportError as e:  # pragma: no cover
            raise RuntimeError(f"spacemouse teleop needs hidapi (pip install 'robo[teleop]'): {e}") from e
        dev = hid.device()
        try:
            if self.config.path:
                dev.open_path(self.config.path.encode())
                self._info = {"path": self.config.path}
            else:
                found = self._find()
                if not found:
                    raise RuntimeError(
                        f"spacemouse '{self.name}': no SpaceMouse found (hidapi lists "
                        f"{len(hid.enumerate())} HID devices; on Linux check /dev/hidraw* permissions)"
                    )
                self._info = found[0]
                dev.open_path(found[0]["path"])
        except OSError as e:
            raise RuntimeError(
                f"spacemouse '{self.name}': cannot open the device ({e}); check hidraw permissions"
            ) from e
        dev.set_nonblocking(False)
        self._dev = dev
        self._raw[:] = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, name=f"spacemouse-{self.name}", daemon=True)
        self._thread.start()

    def _find(self) -> list[dict[str, Any]]:
        import hid

        out = []
        for d in hid.enumerate():
            vid, pid = d.get("vendor_id", 0), d.get("product_id", 0)
            name = (d.get("product_string") or "").lower()
            if self.config.vendor_id and vid != self.config.vendor_id:
                continue
            is_3dx = vid == VENDOR_3DCONNEXION or (vid == VENDOR_LOGITECH and "space" in name)
            if not self.config.vendor_id and not is_3dx:
                continue
            if self.config.product_id and pid != self.config.product_id:
                continue
            out.append(d)
        return out

    def _reader(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._dev.read(64, 100)
            except (OSError, ValueError) as e:
                self._error = e
                with self._lock:
                    self._raw[:] = 0  # a lost device must not keep moving the arm
                return
            if data:
                self.feed_report(bytes(data))

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        if self._dev is not None:
            self._dev.close()
            self._dev = None

    # ---------------------------------------------------------------- description
    def health(self) -> Health:
        if self._connected and self._error is not None:
            return Health("down", f"HID read failed: {self._error}")
        return super().health()

    def probe(self) -> Health:
        found = self.discover()
        if found:
            return Health("offline", f"not connected ({found[0].name} attached)")
        return Health("down", "no SpaceMouse attached")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        if self._info:
            out.update(device_name=self._info.get("product_string", ""), serial=self._info.get("serial_number", ""))
        return out

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        try:
            import hid
        except ImportError:
            return []
        out = []
        seen = set()
        for d in hid.enumerate():
            vid = d.get("vendor_id", 0)
            name = d.get("product_string") or ""
            if vid == VENDOR_3DCONNEXION or (vid == VENDOR_LOGITECH and "space" in name.lower()):
                key = (vid, d.get("product_id"), d.get("serial_number"))
                if key in seen:
                    continue
                seen.add(key)
                path = d.get("path", b"")
                out.append(DeviceInfo("spacemouse", path.decode() if isinstance(path, bytes) else str(path), name,
                                      {"vendor_id": f"{vid:04x}", "product_id": f"{d.get('product_id', 0):04x}"}))
        return out
