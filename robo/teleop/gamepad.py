"""Gamepad teleop through pygame / SDL joystick events: `type: gamepad`.

Default layout (SDL numbering of an Xbox-style pad):

    left stick       x / y of the TCP (push up = +x, push left = +y)
    right stick      up/down = z, left/right = yaw
    d-pad (hat)      pitch (up/down), roll (left/right)
    RB (button 5)    deadman: hold it to move
    A  (button 0)    toggle gripper
    start (7)        finish episode     back (6)  re-record episode

The device state is built only from SDL events (JOYAXISMOTION, JOYHATMOTION, JOYBUTTONDOWN/UP), so
events posted to the SDL queue drive it exactly like a physical pad. Needs no window: with no
display, SDL's dummy video driver is selected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robo.config import check_range
from robo.hal.registry import register
from robo.hal.resource import DeviceInfo, Health, now
from robo.teleop.base import TeleopCommand, TeleopDevice


def _pygame() -> Any:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as e:  # pragma: no cover
        raise RuntimeError(f"gamepad teleop needs pygame (pip install 'robo[teleop]'): {e}") from e
    return pygame


@dataclass
class GamepadConfig:
    """SDL gamepad / joystick."""

    index: int = 0
    """Which joystick (SDL device index)."""
    wait_for_device: bool = False
    """Connect without a pad attached and take the first one plugged in (hot-plug)."""
    deadzone: float = 0.1
    """Stick deflection below this is zero."""
    twist_axes: tuple[int, int, int, int, int, int] = (1, 0, 4, -1, -1, 3)
    """SDL axis index driving vx, vy, vz, wx, wy, wz (-1 = none)."""
    twist_signs: tuple[float, float, float, float, float, float] = (-1.0, -1.0, -1.0, 1.0, 1.0, -1.0)
    """Sign per twist component (SDL sticks report +1 for down/right)."""
    deadman_button: int = 5
    """Hold to move (-1 = no deadman: always enabled)."""
    gripper_button: int = 0
    """Press to toggle the gripper."""
    finish_button: int = 7
    """Press to finish the episode (-1 = none)."""
    rerecord_button: int = 6
    """Press to discard and re-record the episode (-1 = none)."""

    def __post_init__(self) -> None:
        check_range("index", self.index, 0, 64)
        check_range("deadzone", self.deadzone, 0.0, 0.9)


@register("gamepad")
class GamepadTeleop(TeleopDevice):
    """End-effector teleop from an SDL gamepad."""

    config_class: ClassVar[type] = GamepadConfig
    config: GamepadConfig

    def __init__(self, config: GamepadConfig | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self._pg: Any = None
        self._joy: Any = None
        self._instance: int | None = None
        self._axes: dict[int, float] = {}
        self._hat = (0, 0)
        self._buttons: set[int] = set()

    @property
    def lease_key(self) -> str:
        return f"gamepad:{self.config.index}"

    def _connect(self) -> None:
        pg = _pygame()
        pg.display.init()
        pg.joystick.init()
        self._pg = pg
        n = pg.joystick.get_count()
        if n > self.config.index:
            self._open(self.config.index)
        elif not self.config.wait_for_device:
            pg.joystick.quit()
            raise RuntimeError(f"gamepad '{self.name}': no joystick {self.config.index} (SDL sees {n})")
        self._axes.clear()
        self._buttons.clear()

    def _open(self, index: int) -> None:
        joy = self._pg.joystick.Joystick(index)
        joy.init()
        self._joy = joy
        self._instance = joy.get_instance_id()

    def _close(self) -> None:
        if self._pg is not None:
            self._pg.joystick.quit()
        self._joy = None
        self._instance = None

    def _pump(self) -> None:
        pg = self._pg
        types = [pg.JOYAXISMOTION, pg.JOYBUTTONDOWN, pg.JOYBUTTONUP, pg.JOYHATMOTION, pg.JOYDEVICEADDED,
                 pg.JOYDEVICEREMOVED]
        c = self.config
        for ev in pg.event.get(types):
            if ev.type == pg.JOYDEVICEADDED:
                if self._joy is None and getattr(ev, "device_index", -1) == c.index:
                    try:
                        self._open(ev.device_index)
                    except pg.error:
                        pass
                continue
            inst = getattr(ev, "instance_id", None)
            if ev.type == pg.JOYDEVICEREMOVED:
                if inst == self._instance:
                    self._joy, self._instance = None, None
                    self._axes.clear()
                    self._buttons.clear()  # a pad that vanishes releases its deadman
                continue
            if self._instance is not None and inst != self._instance:
                continue
            self._t_input = now()
            if ev.type == pg.JOYAXISMOTION:
                self._axes[ev.axis] = float(ev.value)
            elif ev.type == pg.JOYHATMOTION:
                self._hat = tuple(ev.value)
            elif ev.type == pg.JOYBUTTONDOWN:
                self._buttons.add(ev.button)
                if ev.button == c.gripper_button:
                    self.toggle_gripper()
                elif ev.button == c.finish_button:
                    self.emit("finish")
                elif ev.button == c.rerecord_button:
                    self.emit("rerecord")
            elif ev.type == pg.JOYBUTTONUP:
                self._buttons.discard(ev.button)

    def _read(self) -> TeleopCommand:
        if self._pg is None:
            raise RuntimeError(f"gamepad '{self.name}' is not connected")
        self._pump()
        c = self.config
        twist = np.zeros(6)
        for i, (axis, sign) in enumerate(zip(c.twist_axes, c.twist_signs)):
            if axis >= 0:
                v = self._axes.get(axis, 0.0)
                twist[i] = 0.0 if abs(v) < c.deadzone else sign * (abs(v) - c.deadzone) / (1 - c.deadzone) * np.sign(v)
        twist[4] += float(self._hat[1])  # d-pad up/down: pitch
        twist[3] += float(self._hat[0])  # d-pad left/right: roll
        self.enabled = c.deadman_button < 0 or c.deadman_button in self._buttons
        return TeleopCommand("ee_delta", np.clip(twist, -1, 1), None, self.gripper, self.enabled,
                             self._take_events(), self._t_input)

    def health(self) -> Health:
        h = super().health()
        if self._connected and self._joy is None:
            return Health("degraded", "waiting for a gamepad to be plugged in", h.metrics)
        return h

    def probe(self) -> Health:
        n = len(self.discover())
        if n > self.config.index:
            return Health("offline", f"not connected ({n} joystick(s) attached)")
        return Health("down", f"no joystick {self.config.index} attached")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        if self._joy is not None:
            out.update(device_name=self._joy.get_name(), guid=self._joy.get_guid())
        return out

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        try:
            pg = _pygame()
            pg.joystick.init()
        except Exception:
            return []
        out = []
        for i in range(pg.joystick.get_count()):
            j = pg.joystick.Joystick(i)
            out.append(DeviceInfo("gamepad", str(i), j.get_name(), {"guid": j.get_guid()}))
        return out
