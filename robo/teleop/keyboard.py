"""Keyboard teleop from a plain terminal (works over SSH, no X server): `type: keyboard`.

    w / s   +x / -x          arrows up/down, left/right also move x / y
    a / d   +y / -y          pageup / pagedown also move z
    r / f   +z / -z
    u / o   roll  + / -      (rotation about world x)
    i / k   pitch + / -      (about world y)
    j / l   yaw   + / -      (about world z)
    space   toggle gripper   e   toggle enable (the arm only moves while enabled)
    + / -   speed up / down

A terminal reports presses and auto-repeat but not releases, so a key counts as held for `hold_s`
after its last press: holding a key moves continuously, letting go stops within `hold_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robo.config import check_range
from robo.hal.registry import register
from robo.hal.resource import Health, now
from robo.teleop.base import TeleopCommand, TeleopDevice
from robo.teleop.terminal import TerminalKeys

# key -> (twist axis, sign)
MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "up": (0, 1.0), "down": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0), "left": (1, 1.0), "right": (1, -1.0),
    "r": (2, 1.0), "f": (2, -1.0), "pageup": (2, 1.0), "pagedown": (2, -1.0),
    "u": (3, 1.0), "o": (3, -1.0), "i": (4, 1.0), "k": (4, -1.0), "j": (5, 1.0), "l": (5, -1.0),
}


@dataclass
class KeyboardConfig:
    """Terminal keyboard teleop."""

    hold_s: float = 0.3
    """A key moves the arm for this long after its last press (covers the auto-repeat gap), s."""
    speed: float = 0.5
    """Initial speed as a fraction of the arm's largest step per action; '+'/'-' change it."""
    start_enabled: bool = False
    """Start enabled (otherwise press 'e' first)."""

    def __post_init__(self) -> None:
        check_range("hold_s", self.hold_s, 0.01, 5.0)
        check_range("speed", self.speed, 0.05, 1.0)


@register("keyboard")
class KeyboardTeleop(TeleopDevice):
    """End-effector teleop from terminal key presses."""

    config_class: ClassVar[type] = KeyboardConfig
    config: KeyboardConfig

    def __init__(
        self, config: KeyboardConfig | None = None, *, name: str | None = None, cell: str | None = None,
        keys: TerminalKeys | None = None,
    ) -> None:
        """`keys`: where key presses come from (default: this process's terminal)."""
        super().__init__(config, name=name, cell=cell)
        self._keys_src = keys
        self._q: Any = None
        self._last: dict[tuple[int, float], float] = {}
        self.speed = self.config.speed

    @property
    def lease_key(self) -> str:
        return f"keyboard:{self.cell or 'local'}/{self.name}"

    @property
    def keys(self) -> TerminalKeys:
        if self._keys_src is None:
            self._keys_src = TerminalKeys.stdin()
        return self._keys_src

    def _connect(self) -> None:
        if self.keys.fd is None:
            raise RuntimeError("keyboard teleop needs a terminal on stdin (run robo in a terminal)")
        self._q = self.keys.subscribe()
        self._last.clear()

    def _close(self) -> None:
        if self._q is not None:
            self.keys.unsubscribe(self._q)
            self._q = None

    def _drain(self) -> None:
        if self._q is None:
            return
        while True:
            try:
                key, t = self._q.get_nowait()
            except Exception:
                return
            self._t_input = t
            if key in MOTION_KEYS:
                self._last[MOTION_KEYS[key]] = t
            elif key == "space":
                self.toggle_gripper()
            elif key == "e":
                self.toggle_enabled()
                self._last.clear()
            elif key in ("+", "="):
                self.speed = min(1.0, self.speed * 1.5)
            elif key in ("-", "_"):
                self.speed = max(0.05, self.speed / 1.5)

    def _read(self) -> TeleopCommand:
        self._drain()
        t = now()
        twist = np.zeros(6)
        for (axis, sign), t_key in self._last.items():
            if t - t_key <= self.config.hold_s:
                twist[axis] += sign
        twist = np.clip(twist, -1.0, 1.0) * self.speed
        return TeleopCommand("ee_delta", twist, None, self.gripper, self.enabled, self._take_events(), self._t_input)

    def probe(self) -> Health:
        fd = self.keys.fd
        if fd is None:
            return Health("down", "no terminal on stdin")
        return Health("offline", f"not connected ({'terminal' if self.keys.is_tty else 'non-terminal input'})")

    def status_text(self) -> str:
        return f"{super().status_text()} speed={self.speed:.2f}"
