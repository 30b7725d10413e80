"""Keyboard and leader-arm teleop driving the sim arm to a target, inputs injected at the device boundary.

Keyboard: bytes written into the file descriptor the terminal reader reads (a pipe stands in for
the TTY). Leader arm: the leader sim arm's joints are set by a script (a person moving it).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from robo.hal.cell import Cell
from robo.teleop.keyboard import KeyboardConfig, KeyboardTeleop
from robo.teleop.terminal import TerminalKeys


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))


@pytest.fixture
def pipe_keys():
    r, w = os.pipe()
    keys = TerminalKeys(r)
    yield keys, w
    keys.stop()
    os.close(w)
    os.close(r)


def type_keys(keys: TerminalKeys, w: int, text: bytes) -> None:
    """Write key bytes to the 'terminal' and wait until the reader thread has parsed them."""
    n0 = keys.n_keys
    os.write(w, text)
    deadline = time.monotonic() + 2.0
    while keys.n_keys < n0 + 1 and time.monotonic() < deadline:
        time.sleep(0.001)


def arm_cell() -> Cell:
    return Cell.from_dict({"name": "kb", "resources": {"arm": {"type": "sim_panda"}}})


def test_keyboard_drives_the_arm_to_a_target(pipe_keys):
    keys, w = pipe_keys
    cell = arm_cell()
    kb = KeyboardTeleop(KeyboardConfig(hold_s=0.04, speed=0.5), name="kb", keys=keys)
    with cell.acquire(job="kb-test"), cell, kb:
        arm = cell["arm"]
        lo, hi = arm.action_bounds()
        start, _ = arm.tcp_pose()
        target = start + np.array([0.10, -0.08, -0.06])

        # disabled: keys do not move the arm
        type_keys(keys, w, b"w")
        cmd = kb.read()
        assert not cmd.enabled and np.all(cmd.to_action(lo, hi)[:6] == 0)
        type_keys(keys, w, b"e")  # enable

        plus = {0: b"w", 1: b"a", 2: b"r"}
        minus = {0: b"s", 1: b"d", 2: b"f"}
        for _ in range(60):
            pos, _ = arm.tcp_pose()
            err = target - pos
            pressed = b"".join(plus[i] if e > 0 else minus[i] for i, e in enumerate(err) if abs(e) > 0.008)
            if pressed:
                type_keys(keys, w, pressed)
            cmd = kb.read()
            arm.send_action(cmd.to_action(lo, hi))
            time.sleep(0.045)  # ~20 Hz, like a person's key repeat; keys expire after hold_s
            if not pressed and np.abs(err).max() < 0.008:
                break
        for _ in range(5):  # release all keys and let the arm settle
            arm.send_action(kb.read().to_action(lo, hi))
        pos, _ = arm.tcp_pose()
        assert np.abs(pos - target).max() < 0.015, (pos, target)  # m

        # space toggles the gripper: it closes and stays closed
        type_keys(keys, w, b" ")
        for _ in range(5):
            arm.send_action(kb.read().to_action(lo, hi))
        assert kb.gripper_closed and arm.gripper_width() < 0.01


def test_leader_arm_drives_the_follower_to_the_leaders_pose():
    cell = Cell.load("sim_panda_leader")
    with cell.acquire(job="leader-test"), cell:
        follower, leader_arm, leader = cell["arm"], cell["leader_arm"], cell["leader"]
        lo, hi = follower.action_bounds()
        q0 = leader_arm.joint_positions()
        q_target = q0 + np.array([0.5, 0.3, -0.3, 0.4, 0.3, -0.3, 0.5])

        # pedal up: moving the leader does not move the follower
        leader.set_pedal(False)
        leader_arm.set_joint_positions(q0 + 0.2)
        follower.send_action(leader.read().to_action(lo, hi))
        assert np.abs(follower.joint_positions() - q0).max() < 0.01

        leader.set_pedal(True)
        for s in np.linspace(0.0, 1.0, 12):  # a person moves the leader over ~1.2 s
            leader_arm.set_joint_positions(q0 + s * (q_target - q0), gripper_width=0.08 * (1 - s))
            follower.send_action(leader.read().to_action(lo, hi))
        for _ in range(8):
            follower.send_action(leader.read().to_action(lo, hi))
        assert np.abs(follower.joint_positions() - q_target).max() < 0.02  # rad
        p_f, _ = follower.tcp_pose()
        p_l, _ = leader_arm.tcp_pose()
        assert np.linalg.norm(p_f - p_l) < 0.01  # m
        assert follower.gripper_width() < 0.01  # leader's fingers closed -> follower closes


def test_leader_arm_drives_an_end_effector_follower():
    cell = Cell.from_dict({"name": "lee", "resources": {
        "arm": {"type": "sim_panda"},
        "leader_arm": {"type": "sim_panda", "config": {"wrist_camera": False}},
        "leader": {"type": "leader_arm", "wiring": {"leader": "leader_arm", "controls": "arm"}},
    }})
    with cell.acquire(), cell:
        arm, leader_arm, leader = cell["arm"], cell["leader_arm"], cell["leader"]
        _, hi = arm.action_bounds()
        q_target = leader_arm.joint_positions() + np.array([0.3, 0.2, 0.0, 0.3, 0.0, -0.2, 0.3])
        leader_arm.set_joint_positions(q_target)
        target_pos, _ = leader_arm.tcp_pose()
        for _ in range(25):
            pos, quat = arm.tcp_pose()
            arm.send_action(leader.read().ee_delta_towards(pos, quat, hi))
        pos, _ = arm.tcp_pose()
        assert np.linalg.norm(pos - target_pos) < 0.01  # m
