"""Safety layer: rejected commands never reach the actuators (checked on the torques MuJoCo applies),
torque / torque-rate / joint / workspace limits, the watchdog hold and re-arm, garbage from Python."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import HOME

TICKS = 50
NAN, INF = math.nan, math.inf


def _bad_commands(p0, quat0, now):
    """(method, args, event it must count) — every one must be rejected whole."""
    q_limit = HOME.copy()
    q_limit[3] = 0.5  # joint4 upper limit is -0.0698 rad
    q_low6 = HOME.copy()
    q_low6[5] = -1.0  # joint6 lower limit is -0.0175 rad
    t = now + np.array([0.1, 0.2, 0.3])
    P = np.tile(p0, (3, 1))
    Q = np.tile(quat0, (3, 1))
    W = np.full(3, 0.05)
    P_nan = P.copy()
    P_nan[1, 2] = NAN
    return [
        ("set_ee_target", ([NAN, 0.0, 0.3], quat0, 0.05), "rejected_nonfinite"),
        ("set_ee_target", (p0, [NAN, 0.0, 1.0, 0.0], 0.05), "rejected_nonfinite"),
        ("set_ee_target", (p0, quat0, NAN), "rejected_nonfinite"),
        ("set_ee_target", ([INF, 0.0, 0.3], quat0, 0.05), "rejected_nonfinite"),
        ("set_ee_target", ([1e6, -1e6, 1e6], quat0, 0.05), "rejected_out_of_range"),  # huge
        ("set_ee_target", (p0 + [0.0, 0.0, 2.0], quat0, 0.05), "rejected_out_of_range"),  # outside the box
        ("set_ee_target", (p0, [0.0, 0.0, 0.0, 0.0], 0.05), "rejected_out_of_range"),  # not a rotation
        ("set_ee_target", (p0, 2.0 * quat0, 0.05), "rejected_out_of_range"),
        ("set_ee_target", (p0, quat0, 0.5), "rejected_out_of_range"),  # wider than the gripper
        ("set_ee_target", (p0, quat0, -0.01), "rejected_out_of_range"),
        ("set_joint_target", (q_limit, 0.05), "rejected_out_of_range"),  # beyond a joint limit
        ("set_joint_target", (q_low6, 0.05), "rejected_out_of_range"),
        ("set_joint_target", (HOME + 1e6, 0.05), "rejected_out_of_range"),  # huge
        ("set_joint_target", ([NAN] * 7, 0.05), "rejected_nonfinite"),
        ("set_chunk", (t[::-1], P, Q, W), "rejected_out_of_range"),  # times not increasing
        ("set_chunk", (t, P[:2], Q, W), "rejected_out_of_range"),  # lengths differ
        (
            "set_chunk",
            (now + 0.1 + 0.01 * np.arange(65), np.tile(p0, (65, 1)), np.tile(quat0, (65, 1)), np.full(65, 0.05)),
            "rejected_out_of_range",
        ),  # more than MAX_WAYPOINTS
        ("set_chunk", (now + np.array([1.0, 20.0, 30.0]), P, Q, W), "rejected_out_of_range"),  # too far ahead
        ("set_chunk", (t, P_nan, Q, W), "rejected_nonfinite"),  # one bad waypoint spoils the chunk
        ("set_chunk", ([], np.zeros((0, 3)), np.zeros((0, 4)), []), "rejected_out_of_range"),
        ("set_joint_chunk", (t, [HOME, q_limit, HOME], W), "rejected_out_of_range"),
    ]


def test_rejected_commands_never_reach_the_actuators(sim):
    """Twin simulations get the same valid targets; one also gets every kind of bad command. The
    torques MuJoCo applies must stay bit-identical and the bad commands must all be counted."""
    clean, dirty = sim(), sim()
    p0, quat0 = clean.tcp_pos(), clean.tcp_quat()
    n_bad = {"rejected_nonfinite": 0, "rejected_out_of_range": 0}
    for k in range(10):
        target = p0 + np.array([0.005 * k, 0.003 * k, -0.002 * k])
        for s in (clean, dirty):
            assert s.ctrl.set_ee_target(target, quat0, 0.05)
        for method, args, event in _bad_commands(p0, quat0, dirty.ctrl.now()):
            assert getattr(dirty.ctrl, method)(*args) is False, (method, args)
            n_bad[event] += 1
        for _ in range(TICKS):
            clean.ctrl.step(1)
            dirty.ctrl.step(1)
            assert np.array_equal(clean.data.ctrl, dirty.data.ctrl)
            assert np.array_equal(clean.data.actuator_force, dirty.data.actuator_force)
    np.testing.assert_array_equal(clean.data.qpos, dirty.data.qpos)
    events = dirty.ctrl.events()
    for name, count in n_bad.items():
        assert events[name] == count
    assert events["commands_accepted"] == 10
    assert np.linalg.norm(dirty.tcp_pos() - (p0 + [0.045, 0.027, -0.018])) < 3e-3  # still tracking


def test_torque_and_torque_rate_limits_hold_on_the_actuators(sim):
    s = sim()
    tau_max = s.ctrl.limits()["tau_max"]
    max_step = s.cfg.torque_rate_limit / s.ctrl.loop_hz  # N m per tick
    targets = [(s.tcp_pos() + [0.1, 0.1, -0.1], None), (None, HOME + np.array([0.5, 0.4, -0.4, 0.5, 0.6, -0.4, 1.0]))]
    s.ctrl.step(1)  # the first tick starts from gravity compensation (the rate limiter's origin)
    prev = s.arm_ctrl()
    for pos, q in targets:
        for _ in range(10):
            assert s.ctrl.set_ee_target(pos, s.tcp_quat(), 0.08) if q is None else s.ctrl.set_joint_target(q, 0.08)
            for _ in range(TICKS):
                s.ctrl.step(1)
                tau = s.arm_ctrl()
                assert np.all(np.abs(tau) <= tau_max + 1e-9)
                assert np.all(np.abs(tau - prev) <= max_step + 1e-9)
                prev = tau
    events = s.ctrl.events()
    assert events["torque_rate_clipped"] > 0  # the limiter acted (the moves are aggressive on purpose)


def test_joint_target_inside_the_margin_is_clamped_out_of_it(sim):
    s = sim()
    lim = s.ctrl.limits()
    q = HOME.copy()
    q[5] = lim["q_min"][5] + 0.01  # inside the 0.05 rad soft zone
    assert s.ctrl.set_joint_target(q, 0.08)
    for _ in range(20):
        assert s.ctrl.set_joint_target(q, 0.08)
        s.ctrl.step(TICKS)
    assert s.ctrl.state()["ref_q"][5] == pytest.approx(lim["q_min"][5] + s.cfg.joint_limit_margin, abs=1e-12)
    assert s.data.qpos[5] > lim["q_min"][5] + s.cfg.joint_limit_margin - 0.01


def test_joint_limit_zone_pushes_back(sim):
    """Started inside the soft zone with gains off, the push-back spring moves the joint out."""
    lim_q = HOME.copy()
    s0 = sim()
    q_min6 = s0.ctrl.limits()["q_min"][5]
    lim_q[5] = q_min6 + 0.01
    s = sim(q=lim_q)
    assert s.ctrl.set_gains(joint_kp=[0.0] * 7, joint_kd=[5.0] * 7, nullspace_kp=0.0, cart_kp_pos=0.0, cart_kp_rot=0.0)
    s.ctrl.step(500)
    assert s.ctrl.events()["joint_limit_active"] > 0
    assert s.data.qpos[5] > q_min6 + 0.03


def test_workspace_box_wall(sim):
    """An external upward push: with the box top 1 cm above the TCP, the wall stops the TCP close to
    it; with the default box the same push lifts it further."""
    lifted = {}
    for name, top in (("wall", None), ("free", 1.0)):
        probe = sim()
        z0 = probe.tcp_pos()[2]
        box_top = z0 + 0.01 if top is None else top
        s = sim(workspace_max=(0.9, 0.7, box_top))
        hand = s.model.body("hand").id
        for _ in range(10):
            s.data.xfrc_applied[hand, 2] = 60.0  # N, up
            assert s.ctrl.set_ee_target(probe.tcp_pos(), probe.tcp_quat(), 0.08)
            s.ctrl.step(TICKS)
        lifted[name] = (s.tcp_pos()[2] - z0, s.ctrl.events()["workspace_active"])
    assert lifted["free"][1] == 0
    assert lifted["wall"][1] > 0
    assert lifted["wall"][0] < 0.03  # m: 60 N push against a 2000 N/m wall 1 cm above the start
    assert lifted["free"][0] > lifted["wall"][0] + 0.05  # without the wall the push wins (clipped OSC)


def test_nonfinite_state_is_not_propagated(sim, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo logs the NaN to ./MUJOCO_LOG.TXT when it steps
    s = sim()
    s.ctrl.step(10)
    s.data.qvel[1] = NAN  # a broken sensor reading
    s.ctrl.step(1)
    assert s.ctrl.events()["nonfinite_state"] == 1
    assert np.all(np.isfinite(s.data.ctrl))


def test_watchdog_holds_within_timeout_and_rearm(sim):
    s = sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    target = p0 + np.array([0.02, 0.0, 0.0])
    for _ in range(5):
        assert s.ctrl.set_ee_target(target, quat0, 0.08)
        t_last = s.ctrl.now()
        s.ctrl.step(TICKS)
    timeout = 3.0 / s.cfg.policy_hz
    while s.ctrl.state()["mode"] != "hold":
        s.ctrl.step(1)
        assert s.ctrl.now() - t_last < timeout + 0.01, "watchdog did not trip"
    t_trip = s.ctrl.state()["t"]
    assert timeout < t_trip - t_last <= timeout + 1.0 / s.ctrl.loop_hz + 1e-9
    assert s.ctrl.held and s.ctrl.events()["watchdog_trips"] == 1
    pose_at_trip = s.tcp_pos()
    s.ctrl.step(1000)  # 2 s of silence: still holding, never zero torque
    assert s.ctrl.state()["mode"] == "hold"
    assert np.abs(s.arm_ctrl()).max() > 1.0  # N m: gravity is still compensated
    assert np.linalg.norm(s.tcp_pos() - pose_at_trip) < 2e-3
    assert s.ctrl.set_ee_target(target + [0.0, 0.02, 0.0], quat0, 0.08) is False  # needs a re-arm
    assert s.ctrl.events()["rejected_while_held"] == 1
    s.ctrl.rearm()
    assert not s.ctrl.held and s.ctrl.state()["mode"] == "cartesian"
    assert s.ctrl.events()["rearms"] == 1
    new_target = target + np.array([0.0, 0.03, 0.0])
    for _ in range(20):
        assert s.ctrl.set_ee_target(new_target, quat0, 0.08)
        s.ctrl.step(TICKS)
    assert np.linalg.norm(s.tcp_pos() - new_target) < 2e-3
    assert s.ctrl.events()["watchdog_trips"] == 1


def test_watchdog_counts_from_the_end_of_a_chunk(sim):
    s = sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    t0 = s.ctrl.now()
    times = t0 + np.array([0.2, 0.4, 0.6])
    assert s.ctrl.set_chunk(times, np.tile(p0, (3, 1)), np.tile(quat0, (3, 1)), np.full(3, 0.08))
    s.ctrl.step(int((0.6 + 0.3) * 500) - 5)  # just before last waypoint + timeout
    assert s.ctrl.state()["mode"] == "cartesian"
    s.ctrl.step(10)
    assert s.ctrl.state()["mode"] == "hold"


def test_no_watchdog_before_the_first_target(sim):
    """After reset() nothing is stale: the controller holds the reset pose without tripping."""
    s = sim()
    s.ctrl.step(1000)
    assert s.ctrl.state()["mode"] == "cartesian"
    assert s.ctrl.events()["watchdog_trips"] == 0


def test_reset_clears_the_hold(sim):
    s = sim()
    assert s.ctrl.set_ee_target(s.tcp_pos(), s.tcp_quat(), 0.08)
    s.ctrl.step(400)
    assert s.ctrl.held
    s.ctrl.reset()
    assert not s.ctrl.held and s.ctrl.set_ee_target(s.tcp_pos(), s.tcp_quat(), 0.08)
