"""Control laws in closed loop with MuJoCo (fast mode): gravity compensation, OSC, joint impedance,
gripper, interpolation and timestamped chunks."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from conftest import HOME

from robo.drivers import rt

TICKS_PER_POLICY_STEP = 50  # 500 Hz loop, 10 Hz policy


def _quat_angle(a, b):
    return 2.0 * np.arccos(min(1.0, abs(float(np.dot(a, b)))))


def test_gravity_compensation_alone_holds_pose(sim):
    """Zero gains: only C(q, dq) dq + g(q) from pinocchio. Drift < 1 mm over 5 s."""
    q = np.array([0.4, -0.3, -0.3, -2.0, 0.3, 1.9, 0.2])  # arm reaching out: large gravity torques
    s = sim(q=q)
    assert s.ctrl.set_gains(joint_kp=[0.0] * 7, joint_kd=[0.0] * 7)
    start = s.tcp_pos()
    for _ in range(5 * 10):  # 5 s at 10 Hz; the same target each time keeps the watchdog fed
        assert s.ctrl.set_joint_target(q, 0.08)
        s.ctrl.step(TICKS_PER_POLICY_STEP)
    assert abs(s.data.time - 5.0) < 1e-9
    assert np.abs(s.ctrl.state()["tau"][:4]).max() > 5.0  # gravity really is being compensated (N m)
    assert np.linalg.norm(s.tcp_pos() - start) < 1e-3  # m


def test_without_gravity_compensation_the_arm_falls(sim):
    """Control for the test above: with the torques off the same arm drops by centimetres."""
    q = np.array([0.4, -0.3, -0.3, -2.0, 0.3, 1.9, 0.2])
    s = sim(q=q)
    start = s.tcp_pos()
    for _ in range(250):
        s.data.ctrl[:] = 0.0
        mujoco.mj_step(s.model, s.data)
    assert np.linalg.norm(s.tcp_pos() - start) > 0.02


@pytest.mark.parametrize("offset", [(0.10, 0.0, 0.0), (0.0, 0.06, -0.08), (-0.05, -0.05, 0.07)])
def test_osc_reaches_10cm_target(sim, offset):
    s = sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    offset = np.array(offset) * 0.1 / np.linalg.norm(offset)  # exactly 10 cm
    target = p0 + offset
    for _ in range(30):  # 3 s
        assert s.ctrl.set_ee_target(target, quat0, 0.08)
        s.ctrl.step(TICKS_PER_POLICY_STEP)
    assert np.linalg.norm(s.tcp_pos() - target) < 2e-3  # m
    assert _quat_angle(s.tcp_quat(), quat0) < 0.01  # rad
    st = s.ctrl.state()
    np.testing.assert_allclose(st["ee_pos"], s.tcp_pos(), atol=1e-9)  # pinocchio FK == MuJoCo site
    assert st["mode"] == "cartesian"


def test_osc_rotation_target(sim):
    s = sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    rot = np.zeros(4)
    mujoco.mju_axisAngle2Quat(rot, np.array([0.0, 0.0, 1.0]), 0.4)
    target_quat = np.zeros(4)
    mujoco.mju_mulQuat(target_quat, rot, quat0)
    for _ in range(30):
        assert s.ctrl.set_ee_target(p0, target_quat, 0.08)
        s.ctrl.step(TICKS_PER_POLICY_STEP)
    assert _quat_angle(s.tcp_quat(), target_quat) < 0.01
    assert np.linalg.norm(s.tcp_pos() - p0) < 2e-3


def test_joint_impedance_reaches_joint_target(sim):
    s = sim()
    target = HOME + np.array([0.3, 0.2, -0.2, 0.3, 0.3, -0.2, 0.5])
    for _ in range(30):
        assert s.ctrl.set_joint_target(target, 0.08)
        s.ctrl.step(TICKS_PER_POLICY_STEP)
    np.testing.assert_allclose(s.data.qpos[:7], target, atol=0.01)  # rad
    assert s.ctrl.state()["mode"] == "joint"


def test_gripper_position_control(sim):
    s = sim(finger=0.04)
    pos, quat = s.tcp_pos(), s.tcp_quat()
    checks = ((0.0, lambda w: w < 0.004), (0.08, lambda w: w > 0.076), (0.03, lambda w: abs(w - 0.03) < 0.003))
    for width, check in checks:
        for _ in range(10):
            assert s.ctrl.set_ee_target(pos, quat, width)
            s.ctrl.step(TICKS_PER_POLICY_STEP)
        measured = s.data.qpos[7] + s.data.qpos[8]
        assert check(measured), (width, measured)
        assert abs(s.ctrl.state()["gripper_width"] - measured) < 1e-12


def test_linear_interpolation_reference(sim):
    s = sim(interpolation="linear")
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    target = p0 + np.array([0.04, 0.0, 0.0])
    assert s.ctrl.set_ee_target(target, quat0, 0.08)
    s.ctrl.step(26)  # the reference evaluated at tick 25 = t0 + 0.05 s = half the 0.1 s interpolation
    ref = s.ctrl.state()["ref_ee_pos"]
    np.testing.assert_allclose(ref, p0 + 0.5 * (target - p0), atol=1e-9)
    s.ctrl.step(25)
    np.testing.assert_allclose(s.ctrl.state()["ref_ee_pos"], target, atol=1e-12)


def test_min_jerk_interpolation_reference(sim):
    s = sim(interpolation="min_jerk")
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    target = p0 + np.array([0.0, 0.0, 0.04])
    assert s.ctrl.set_ee_target(target, quat0, 0.08)
    s.ctrl.step(13)  # reference at tick 12: tau = 0.24
    tau = 12 / 50
    expected = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
    np.testing.assert_allclose(s.ctrl.state()["ref_ee_pos"], p0 + expected * (target - p0), atol=1e-9)


def test_ee_chunk_passes_through_waypoints(sim):
    s = sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    t0 = s.ctrl.now()
    n = 8
    times = t0 + 0.1 * np.arange(1, n + 1)  # one waypoint per policy period
    pos = p0 + np.outer(np.linspace(0.01, 0.08, n), [1.0, 0.5, 0.0])
    quats = np.tile(quat0, (n, 1))
    widths = np.full(n, 0.06)
    assert s.ctrl.set_chunk(times, pos, quats, widths)
    for k in range(n):  # at each waypoint's time the reference sits on it
        s.ctrl.step(TICKS_PER_POLICY_STEP + (1 if k == 0 else 0))
        st = s.ctrl.state()
        assert abs(st["t"] - times[k]) < 1e-9  # the tick evaluated last ran at the waypoint's time
        np.testing.assert_allclose(st["ref_ee_pos"], pos[k], atol=1e-9)
        assert abs(st["ref_gripper_width"] - 0.06) < 0.02
    s.ctrl.step(100)  # chunk over: hold its last waypoint (no watchdog until 0.3 s after it)
    assert s.ctrl.state()["mode"] == "cartesian"
    assert np.linalg.norm(s.tcp_pos() - pos[-1]) < 2e-3


def test_joint_chunk_and_late_waypoints(sim):
    s = sim()
    t0 = s.ctrl.now()
    q_target = HOME + 0.2
    times = [t0 - 0.05, t0 + 0.2, t0 + 0.4]  # the first is already late: skipped
    qs = [HOME + 0.5, HOME + 0.1, q_target]
    assert s.ctrl.set_joint_chunk(times, qs, [0.08, 0.08, 0.08])
    s.ctrl.step(101)  # the last tick runs at t0 + 0.2 s: on the second waypoint
    np.testing.assert_allclose(s.ctrl.state()["ref_q"], HOME + 0.1, atol=1e-9)
    s.ctrl.step(200)
    np.testing.assert_allclose(s.data.qpos[:7], q_target, atol=0.01)


def test_target_preemption_is_smooth(sim):
    """A new target mid-interpolation continues from the current reference (no jump)."""
    s = sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    assert s.ctrl.set_ee_target(p0 + [0.05, 0, 0], quat0, 0.08)
    s.ctrl.step(25)
    before = s.ctrl.state()["ref_ee_pos"]
    assert s.ctrl.set_ee_target(p0 + [0.0, 0.05, 0], quat0, 0.08)
    s.ctrl.step(1)
    after = s.ctrl.state()["ref_ee_pos"]
    assert np.linalg.norm(after - before) < 2e-3  # at most one tick of motion (m)


def test_set_gains_roundtrip_and_validation(sim):
    s = sim()
    assert s.ctrl.set_gains(cart_kp_pos=300.0, joint_kp=[10.0] * 7)
    g = s.ctrl.gains()
    assert g["cart_kp_pos"] == 300.0
    np.testing.assert_array_equal(g["joint_kp"], [10.0] * 7)
    assert g["cart_kp_rot"] == s.cfg.cart_kp_rot  # untouched
    assert not s.ctrl.set_gains(cart_kp_pos=float("nan"))
    assert not s.ctrl.set_gains(max_pos_error=-1.0)
    assert s.ctrl.gains()["cart_kp_pos"] == 300.0
    ev = s.ctrl.events()
    assert ev["gains_changed"] == 1 and ev["gains_rejected"] == 2


def test_docstrings_come_from_doxygen():
    assert "(m, shape (3,))" in rt.MujocoController.set_ee_target.__doc__
    assert "N m/rad" in rt._rt._ControllerConfig.joint_kp.__doc__
    assert "max_pos_error" in rt.MujocoController.set_gains.__doc__
