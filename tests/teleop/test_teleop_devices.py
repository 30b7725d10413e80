"""Gamepad (SDL events), SpaceMouse (raw HID reports) and terminal key parsing."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from robo.teleop.base import TeleopCommand
from robo.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop
from robo.teleop.terminal import parse_keys


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_terminal_bytes_parse_to_keys():
    assert parse_keys(b"wa \r\x1b[A\x1b[6~\x1bq\x7f") == ["w", "a", "space", "enter", "up", "pagedown", "esc", "q",
                                                         "backspace"]


def test_gamepad_from_sdl_events():
    pygame = pytest.importorskip("pygame")
    from robo.teleop.gamepad import GamepadConfig, GamepadTeleop

    with pytest.raises(RuntimeError, match="no joystick 0"):
        GamepadTeleop(name="pad").connect()
    pad = GamepadTeleop(GamepadConfig(wait_for_device=True), name="pad")
    with pad:
        assert pad.health().status == "degraded"  # waiting for a pad

        def post(kind, **kw):
            pygame.event.post(pygame.event.Event(kind, joy=0, instance_id=0, **kw))

        post(pygame.JOYAXISMOTION, axis=1, value=-1.0)  # left stick pushed fully up
        post(pygame.JOYAXISMOTION, axis=3, value=0.05)  # right stick inside the deadzone
        cmd = pad.read()
        assert not cmd.enabled and cmd.twist[0] == pytest.approx(1.0)  # deadman not held
        assert np.all(cmd.to_action(-np.ones(7), np.full(7, 0.03))[:6] == 0)  # so the arm holds
        post(pygame.JOYBUTTONDOWN, button=5)  # hold RB
        post(pygame.JOYBUTTONDOWN, button=0)  # A: toggle gripper
        post(pygame.JOYBUTTONUP, button=0)
        post(pygame.JOYHATMOTION, hat=0, value=(0, 1))
        cmd = pad.read()
        assert cmd.enabled and cmd.gripper == 1.0
        assert cmd.twist == pytest.approx([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        assert cmd.to_action(-np.full(7, 0.03), np.full(7, 0.03))[0] == pytest.approx(0.03)
        post(pygame.JOYBUTTONUP, button=5)
        post(pygame.JOYBUTTONDOWN, button=7)  # start: finish the episode
        cmd = pad.read()
        assert not cmd.enabled and cmd.events == ("finish",)
        assert pad.read().events == ()  # one-shot


def report(rid: int, *vals: int) -> bytes:
    return bytes([rid]) + struct.pack(f"<{len(vals)}h", *vals)


def test_spacemouse_from_hid_reports():
    sm = SpaceMouseTeleop(SpaceMouseConfig(), name="sm")
    assert sm.enabled  # spring-loaded puck: enabled by default
    sm.feed_report(report(1, 0, -350, 0))  # push the puck forward (device -y)
    sm.feed_report(report(2, 0, 0, 175))  # twist it
    cmd = sm.read()
    assert cmd.twist[0] == pytest.approx(1.0) and cmd.twist[5] < -0.4  # +x, yaw
    assert np.count_nonzero(cmd.twist) == 2
    sm.feed_report(report(1, 10, 0, 0, 0, 0, 0))  # 13-byte report (newer devices): all six axes
    assert np.all(sm.read().twist == 0)  # 10/350 is inside the deadzone
    sm.feed_report(bytes([3, 0b01]))  # left button: gripper toggles
    sm.feed_report(bytes([3, 0b00]))
    sm.feed_report(bytes([3, 0b10]))  # right button: enable latch toggles off
    cmd = sm.read()
    assert cmd.gripper == 1.0 and not cmd.enabled
    assert sm.n_reports == 6
    with pytest.raises(RuntimeError, match="no SpaceMouse found"):
        sm.connect()


def test_teleop_command_maps_to_arm_actions():
    lo7, hi7 = -np.array([0.03] * 3 + [0.15] * 3 + [1.0]), np.array([0.03] * 3 + [0.15] * 3 + [1.0])
    cmd = TeleopCommand("ee_delta", np.array([0.5, -1, 0, 0, 0, 2.0]), None, 1.0, True)
    assert cmd.to_action(lo7, hi7) == pytest.approx([0.015, -0.03, 0, 0, 0, 0.15, 1.0])
    joint = TeleopCommand("joint", np.zeros(6), np.arange(7) * 0.1, -1.0, False)
    a = joint.to_action(-np.full(8, 3.0), np.full(8, 3.0))
    assert np.all(np.isnan(a[:7])) and a[7] == -1.0  # disabled: hold
    with pytest.raises(ValueError, match="cannot drive an ee_delta arm"):
        joint.to_action(lo7, hi7)
