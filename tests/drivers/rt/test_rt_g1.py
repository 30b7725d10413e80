"""The C++ controller beyond 7 joints and one TCP: the G1's upper body (17 joints, waist + two arms, two
TCP frames) on MuJoCo, on PD drives (the command form of rt/arm_sdk) and on torque drives; its limits,
watchdog and state timeout; and the ExternalBackend a DDS driver feeds."""

from __future__ import annotations

import time

import mujoco
import numpy as np
import pytest

from robo.drivers import rt
from robo.sim import g1

MJCF = g1.ASSETS / "g1_welded.xml"


class G1Sim:
    """The welded G1 and the upper-body controller on it, arms at the task's home pose."""

    def __init__(self, **overrides):
        self.model = mujoco.MjModel.from_xml_path(str(MJCF))
        self.data = mujoco.MjData(self.model)
        self.qadr = np.array([self.model.jnt_qposadr[self.model.joint(j).id] for j in g1.UPPER_BODY])
        self.palms = [self.model.site(s).id for s in g1.TCP_FRAMES]
        self.home = g1.solve_hands_ik(self.model, self.qadr, self.palms, ([0.25, 0.22, 0.95], [0.25, -0.22, 0.95]))
        self.data.qpos[self.qadr] = self.home
        mujoco.mj_forward(self.model, self.data)
        self.pelvis = self.data.xpos[self.model.body("pelvis").id].copy()
        self.cfg = g1.upper_body_config(**overrides)
        self.ctrl = rt.MujocoController(self.model, self.data, g1.URDF_PATH, self.cfg,
                                        robot=g1.upper_body_description())
        self.ctrl.reset()

    def palm_pos(self) -> np.ndarray:
        """(2, 3) palms in the pelvis frame (the controller's frame), m."""
        return np.stack([self.data.site_xpos[s] for s in self.palms]) - self.pelvis

    def q(self) -> np.ndarray:
        return self.data.qpos[self.qadr].copy()


@pytest.fixture
def g1sim():
    made = []

    def make(**overrides) -> G1Sim:
        s = G1Sim(**overrides)
        made.append(s)
        return s

    yield make
    for s in made:
        s.ctrl.stop()


def test_model_is_17_joints_two_tcps_with_group_masked_jacobians(g1sim):
    s = g1sim()
    assert s.ctrl.n_joints == 17 and s.ctrl.n_tcps == 2
    model = rt.RobotModel(str(g1.URDF_PATH), robot=g1.upper_body_description())
    out = model.compute(list(s.home), [0.0] * 17)
    J = np.asarray(out["J"])
    assert J.shape == (12, 17)
    assert np.all(J[:, :3] == 0)  # the waist moves no TCP in Cartesian mode (it holds its posture)
    assert np.all(J[:6, 10:] == 0) and np.all(J[6:, 3:10] == 0)  # each arm moves only its own hand
    assert np.abs(J[:6, 3:10]).max() > 0.1 and np.abs(J[6:, 10:]).max() > 0.1
    np.testing.assert_allclose(out["tcp_pos"], s.palm_pos(), atol=1e-9)  # pinocchio FK == MuJoCo's
    mujoco.mj_forward(s.model, s.data)
    dofs = [s.model.jnt_dofadr[s.model.joint(j).id] for j in g1.UPPER_BODY]
    np.testing.assert_allclose(out["g"], s.data.qfrc_bias[dofs], atol=1e-6)  # gravity torques, N m


@pytest.mark.parametrize("output_mode", ["joint_pd", "torque"])
def test_bimanual_cartesian_targets_are_reached(g1sim, output_mode):
    s = g1sim(output_mode=output_mode, cart_kp_pos=300.0, cart_kp_rot=300.0)
    start = s.palm_pos()
    quat = s.ctrl.state()["ee_quat_wxyz"]
    assert quat.shape == (2, 4)
    goal = start + np.array([[0.05, -0.03, -0.04], [0.04, 0.03, 0.05]])
    waist0 = s.q()[:3]
    for k in range(1, 31):  # 1.5 s of targets at 20 Hz, moving there over 0.5 s
        alpha = min(1.0, k / 10)
        assert s.ctrl.set_ee_targets(start + alpha * (goal - start), quat, 0.0)
        s.ctrl.step(25)
    err = np.linalg.norm(s.palm_pos() - goal, axis=1)
    assert np.all(err < 0.01), err  # m
    assert np.abs(s.q()[:3] - waist0).max() < 0.02  # rad: the waist held its posture
    ev = s.ctrl.events()
    assert ev["nonfinite_torque"] == 0 and ev["rejected_out_of_range"] == 0


def test_joint_targets_on_pd_drives_and_the_command_form(g1sim):
    s = g1sim()
    target = s.home + np.where(np.arange(17) >= 3, 0.15, 0.0)
    for _ in range(30):
        assert s.ctrl.set_joint_target(list(target), 0.0)
        s.ctrl.step(25)
    assert np.abs(s.q() - target).max() < 0.03  # rad
    st = s.ctrl.state()
    assert st["mode"] == "joint"
    np.testing.assert_allclose(st["ref_q"], target, atol=1e-6)  # what the drives track
    assert not s.ctrl.set_joint_target([0.0] * 7, 0.0)  # a Panda-sized target: refused whole
    with pytest.raises(ValueError, match="joint_kp has 7 values, the controller has 17 joints"):
        s.ctrl.set_gains(joint_kp=[10.0] * 7)


def test_pd_limits_position_speed_and_torque(g1sim):
    s = g1sim()
    lim = s.ctrl.limits()
    q_min, q_max, tau_max = (np.asarray(lim[k]) for k in ("q_min", "q_max", "tau_max"))
    outside = s.home.copy()
    outside[7] = q_max[7] + 0.1  # left wrist roll past its limit: refused
    assert not s.ctrl.set_joint_target(list(outside), 0.0)
    edge = s.home.copy()
    edge[7] = q_max[7] - 0.001  # inside the limit but in the margin: clamped out of it
    worst_tau, worst_q = 0.0, -np.inf
    for _ in range(20):
        assert s.ctrl.set_joint_target(list(edge), 0.0)
        for _ in range(25):
            s.ctrl.step(1)
            st = s.ctrl.state()
            worst_tau = max(worst_tau, float(np.max(np.abs(st["tau"]) / tau_max)))
            worst_q = max(worst_q, float(s.q()[7]))
    assert s.ctrl.state()["ref_q"][7] <= q_max[7] - s.cfg.joint_limit_margin + 1e-9
    assert worst_q < q_max[7]
    assert worst_tau <= 1.0 + 1e-9  # the PD torque at the measured state never passed the limit
    assert np.all(np.asarray(s.ctrl.state()["ref_q"]) >= q_min)


def test_pd_target_speed_is_limited(g1sim):
    s = g1sim()
    far = s.home.copy()
    far[3] += 1.0  # left shoulder pitch, 1 rad away
    assert s.ctrl.set_joint_target(list(far), 0.0)
    ref = []
    for _ in range(100):
        s.ctrl.step(1)
        ref.append(s.ctrl.state()["ref_q"][3])
    vmax = np.asarray(s.ctrl.limits()["dq_max"])[3] * s.cfg.velocity_limit_scale
    assert np.max(np.abs(np.diff(ref))) <= vmax * s.model.opt.timestep + 1e-9  # rad per tick
    assert s.ctrl.events()["reference_limited"] > 0


def test_watchdog_holds_the_pose_on_pd_drives(g1sim):
    s = g1sim()
    quat = s.ctrl.state()["ee_quat_wxyz"]
    assert s.ctrl.set_ee_targets(s.palm_pos() + [0.02, 0.0, 0.0], quat, 0.0)
    s.ctrl.step(250)  # 0.5 s without a new target: the watchdog (0.15 s at 20 Hz) trips
    st = s.ctrl.state()
    assert st["mode"] == "hold" and s.ctrl.held and s.ctrl.events()["watchdog_trips"] == 1
    held = s.q()
    s.ctrl.step(250)
    assert np.abs(s.q() - held).max() < 0.01  # rad: holds, never goes limp
    assert not s.ctrl.set_ee_targets(s.palm_pos(), quat, 0.0)  # refused until rearm
    s.ctrl.rearm()
    assert s.ctrl.set_ee_targets(s.palm_pos(), quat, 0.0)


def test_config_must_match_the_robot():
    model = mujoco.MjModel.from_xml_path(str(MJCF))
    data = mujoco.MjData(model)
    with pytest.raises(ValueError, match="n_joints=7 must match the robot's 17"):
        rt.MujocoController(model, data, g1.URDF_PATH, rt.ControllerConfig(), robot=g1.upper_body_description())
    with pytest.raises(ValueError, match="joint_kp must have 17 values"):
        rt.ControllerConfig(n_joints=17)
    bad = g1.upper_body_description()
    bad.tcp_frames = ["left_palm"]
    with pytest.raises(RuntimeError, match="right_palm"):
        rt.RobotModel(str(g1.URDF_PATH), robot=bad)


def test_external_backend_commands_and_holds_when_the_state_stops():
    cfg = g1.upper_body_config(state_timeout_s=0.05, rt_priority=0, lock_memory=False)
    ctrl = rt.ExternalController(g1.URDF_PATH, g1.upper_body_description(), cfg, rate_hz=500.0, stale_after_s=0.02)
    model = mujoco.MjModel.from_xml_path(str(MJCF))
    qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in g1.UPPER_BODY])
    home = g1.solve_hands_ik(model, qadr, [model.site(s).id for s in g1.TCP_FRAMES],
                             ([0.25, 0.22, 0.95], [0.25, -0.22, 0.95]))
    zeros = [0.0] * 17
    assert not ctrl.push_state([0.0] * 5, zeros, zeros)  # wrong size: refused
    assert ctrl.take_command() is None  # nothing computed yet
    assert ctrl.push_state(list(home), zeros, zeros)
    ctrl.reset()
    ctrl.start(realtime=True)
    try:
        for _ in range(50):  # 0.1 s of fresh states
            ctrl.push_state(list(home), zeros, zeros)
            time.sleep(0.002)
        cmd = ctrl.take_command()
        assert cmd["drive_pd"] and len(cmd["q"]) == 17
        np.testing.assert_allclose(cmd["q"], home, atol=1e-6)  # holding the measured pose
        np.testing.assert_allclose(cmd["kp"], g1.UPPER_KP)
        assert np.abs(cmd["tau_ff"]).max() > 0.1  # gravity compensation of the arms
        assert not ctrl.held
        time.sleep(0.2)  # the state stream stops
        assert ctrl.held and ctrl.events()["state_timeouts"] == 1
        held = ctrl.take_command()
        np.testing.assert_allclose(held["q"], home, atol=1e-6)  # the hold keeps the last measured pose
        assert ctrl.io_stats() == {"states_pushed": 51, "states_refused": 1}
    finally:
        ctrl.stop()
