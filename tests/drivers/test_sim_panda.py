"""sim_panda: the MuJoCo arm behind the Arm contract, driving the project controller."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robo.drivers.sim_panda import SimPanda, SimPandaConfig
from robo.hal import lease
from robo.hal.testing import ArmContract
from robo.spec import STATE


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))


@pytest.fixture
def arm():
    a = SimPanda(SimPandaConfig(), name="arm", cell="test")
    a.connect()
    a.lease()
    yield a
    a.close()
    a.release_lease()


def test_ee_delta_moves_the_tcp_and_respects_limits(arm):
    p0, q0 = arm.tcp_pose()
    assert p0 == pytest.approx([0.5, 0.0, 0.25], abs=1e-3)  # home from IK
    sent_x = [arm.send_action(np.array([0.5, 0, 0, 0, 0, 0, -1], np.float32))[0] for _ in range(10)]
    # 0.5 m asked per step, 0.03 m allowed; the target stops at the workspace edge x = 0.75 m
    assert sent_x[:8] == pytest.approx([0.03] * 8) and sum(sent_x) == pytest.approx(0.25, abs=1e-6)
    for _ in range(5):  # settle
        arm.send_action(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    p1, _ = arm.tcp_pose()
    assert p1[0] - p0[0] == pytest.approx(0.25, abs=0.01)  # the TCP followed the target
    assert abs(p1[1]) < 0.01 and abs(p1[2] - 0.25) < 0.01
    # the workspace box clips the target: further +x is not sent
    assert arm.send_action(np.array([0.03, 0, 0, 0, 0, 0, -1], np.float32))[0] == pytest.approx(0.0, abs=1e-6)
    # closing the gripper
    for _ in range(5):
        arm.send_action(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))
    assert arm.gripper_width() < 0.01
    assert arm.health().status == "ok"
    assert arm.metadata()["controller"] in ("cpp", "python")


def test_joint_mode_tracks_targets():
    a = SimPanda(SimPandaConfig(control_mode="joint"), name="j", cell="test")
    with a:
        a.lease()
        target = a.joint_positions() + np.array([0.3, -0.2, 0.2, 0.3, -0.3, 0.2, 0.4])
        for _ in range(15):
            a.send_action(np.append(target, -1.0).astype(np.float32))
        assert np.abs(a.joint_positions() - target).max() < 0.02  # rad
        assert a.get_observation()[STATE][:7] == pytest.approx(target, abs=0.02)


def test_exec_actions_runs_on_time_and_preempts(arm):
    dx = np.array([0.01, 0, 0, 0, 0, 0, -1], np.float32)
    t0 = time.time() + 0.05
    arm.exec_actions(np.stack([dx] * 6), t0 + 0.2 * np.arange(6), late_s=1.0)
    assert arm.pending_actions() == 6
    time.sleep(0.1)
    # preempt: from t0 + 0.5 on, move along -y instead (the +x actions from then on are dropped)
    dy = np.array([0, -0.01, 0, 0, 0, 0, -1], np.float32)
    arm.exec_actions(np.stack([dy] * 3), t0 + 0.5 + 0.05 * np.arange(3), late_s=1.0)
    assert arm.pending_actions() in (4, 5)  # the x at t0 + 0.4 (and t0 + 0.2) plus the 3 new ones
    deadline = time.time() + 3
    while arm.pending_actions() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    assert arm.pending_actions() == 0
    assert arm.n_executed_actions == 6 and arm.n_late_actions == 0
    assert arm._target_pos[0] - 0.5 == pytest.approx(0.01 * 3, abs=1e-6)  # 3 x +x before preemption
    assert arm._target_pos[1] == pytest.approx(-0.01 * 3, abs=1e-6)


def test_second_process_cannot_command_a_leased_arm(arm, tmp_path):
    import subprocess
    import sys

    code = (
        "from robo.drivers.sim_panda import SimPanda\n"
        "a = SimPanda(name='arm', cell='test')\n"
        "try:\n    a.lease()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("LeaseError"), out.stderr
    import os

    assert f"pid {os.getpid()}" in out.stdout and "sim_panda:test/arm" in out.stdout
    assert lease.holders("sim_panda:test/arm")[0].pid == os.getpid()


class TestSimPandaContract(ArmContract):
    def make_resource(self):
        return SimPanda(SimPandaConfig(), name="arm", cell="contract")


def test_drives_the_cpp_controller_when_built():
    # The package build always compiles robo.drivers.rt, so an unusable C++ controller fails this test.
    probe = SimPanda(SimPandaConfig(controller="cpp"), name="probe", cell="test")
    probe.connect()
    probe.close()
    with SimPanda(name="a", cell="test") as a:  # controller: auto
        assert a.controller_kind == "cpp" and a.metadata()["controller"] == "cpp"
    with SimPanda(SimPandaConfig(controller="python"), name="b", cell="test") as b:
        assert b.controller_kind == "python"


# ---------------------------------------------------------------- real-time mode (what cells run)
class TestSimPandaRealtimeContract(ArmContract):
    def make_resource(self):
        return SimPanda(SimPandaConfig(realtime=True), name="arm", cell="contract-rt")


def test_realtime_mode_moves_on_the_wall_clock_and_holds_on_its_own():
    a = SimPanda(SimPandaConfig(realtime=True), name="rt", cell="test")
    with a:
        a.lease()
        assert a.loop_running and a.metadata()["realtime"]
        p0, _ = a.tcp_pose()
        t0, sim0 = time.monotonic(), a.sim_time
        for _ in range(5):  # send_action only writes the target: the C++ thread moves the arm
            a.send_action(np.array([0.02, 0, 0, 0, 0, 0, -1], np.float32))
            time.sleep(0.1)
        time.sleep(0.3)
        p1, _ = a.tcp_pose()
        assert p1[0] - p0[0] == pytest.approx(0.10, abs=0.01)  # m
        assert abs((a.sim_time - sim0) - (time.monotonic() - t0)) < 0.2  # sim time runs with the wall clock (s)
        # observers read a consistent copy of the scene: its TCP is the controller's within a tick (m)
        with a.sim_lock:
            w = a.world()
            site = w.site_xpos[a._tcp].copy()
        np.testing.assert_allclose(site, a.get_observation()[STATE][8:11], atol=2e-3)
        assert w is not a.data  # never the loop's own MjData
        # hold: no new targets -> the controller's own watchdog hold, confirmed from its state
        assert a.hold() and a.held and a.controller_status()["mode"] == "hold"
        a.rearm()
        assert not a.held
        assert a.move_home(10.0)  # through the controller
        np.testing.assert_allclose(a.joint_positions(), a.home_q, atol=0.02)  # rad
    assert not a.is_connected
