"""PyController: operational-space tracking, joint impedance, gripper, torque limits, bad-target rejection."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from robo.geometry import quat_from_mat, quat_from_rotvec, quat_mul, rotvec_from_quat
from robo.sim.control import ASSETS, PyController, make_controller
from robo.sim.tasks.base import DOWN_QUAT, solve_ik

TICKS_PER_S = 500


@pytest.fixture()
def sim():
    model = mujoco.MjModel.from_xml_path(str(ASSETS / "scene_common.xml"))
    data = mujoco.MjData(model)
    data.qpos[:7] = solve_ik(model, np.array([0.5, 0.0, 0.25]), DOWN_QUAT, np.zeros(7) + [0, 0, 0, -2, 0, 2, 0.8])
    data.qpos[7:9] = 0.04
    mujoco.mj_forward(model, data)
    return model, data


def tcp(model, data):
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "tcp")
    return data.site_xpos[site].copy(), quat_from_mat(data.site_xmat[site])


def test_holds_pose_after_reset(sim):
    model, data = sim
    ctrl = PyController(model, data, q_home=data.qpos[:7].copy())
    p0, _ = tcp(model, data)
    ctrl.step(TICKS_PER_S)
    p1, _ = tcp(model, data)
    assert np.linalg.norm(p1 - p0) < 1e-3  # m: gravity compensated, no drift


def test_osc_reaches_5cm_target_and_rotation(sim):
    model, data = sim
    ctrl = PyController(model, data, q_home=data.qpos[:7].copy())
    p0, q0 = tcp(model, data)
    target = p0 + [0.05, -0.03, -0.04]  # |d| ~ 7 cm
    q_target = quat_mul(quat_from_rotvec([0.0, 0.0, 0.3]), q0)
    assert ctrl.set_ee_target(target, q_target, 0.08)
    ctrl.step(TICKS_PER_S)  # 1 s
    p1, q1 = tcp(model, data)
    assert np.linalg.norm(p1 - target) < 0.003  # m
    assert np.linalg.norm(rotvec_from_quat(quat_mul(q_target, q1 * [1, -1, -1, -1]))) < 0.01  # rad


def test_reference_limiting_bounds_speed(sim):
    model, data = sim
    ctrl = PyController(model, data, q_home=data.qpos[:7].copy())
    p0, q0 = tcp(model, data)
    assert ctrl.set_ee_target(p0 + [0.0, 0.3, 0.0], q0, 0.08)
    ctrl.step(TICKS_PER_S // 10)  # 0.1 s
    moved = np.linalg.norm(tcp(model, data)[0] - p0)
    # terminal speed = kp * max_pos_err / kd ~ 0.3 m/s: far from the 30 cm a stiff spring would jump
    assert 0.005 < moved < 0.04


def test_joint_impedance_reaches_target(sim):
    model, data = sim
    ctrl = PyController(model, data)
    q_target = data.qpos[:7] + np.array([0.2, -0.1, 0.1, 0.15, -0.2, 0.1, 0.3])
    assert ctrl.set_joint_target(q_target, 0.04)
    ctrl.step(2 * TICKS_PER_S)
    assert np.abs(data.qpos[:7] - q_target).max() < 0.01  # rad
    assert abs(ctrl.gripper_width - 0.04) < 0.002  # m


def test_gripper_width_tracking(sim):
    model, data = sim
    ctrl = PyController(model, data, q_home=data.qpos[:7].copy())
    p0, q0 = tcp(model, data)
    for width in (0.02, 0.07):
        assert ctrl.set_ee_target(p0, q0, width)
        ctrl.step(TICKS_PER_S // 2)
        assert abs(ctrl.gripper_width - width) < 0.002  # m


BAD_EE = [
    ([np.nan, 0.0, 0.3], DOWN_QUAT, 0.04),
    ([0.5, 0.0, np.inf], DOWN_QUAT, 0.04),
    ([50.0, 0.0, 0.3], DOWN_QUAT, 0.04),  # out of reach
    ([0.5, 0.0, 0.3], [np.nan, 1.0, 0.0, 0.0], 0.04),
    ([0.5, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0], 0.04),  # not a rotation
    ([0.5, 0.0, 0.3], [0.0, 5.0, 0.0, 0.0], 0.04),
    ([0.5, 0.0, 0.3], DOWN_QUAT, np.nan),
    ([0.5, 0.0, 0.3], DOWN_QUAT, 0.5),  # wider than the hand
    ([0.5, 0.0, 0.3], DOWN_QUAT, -0.01),
    ([0.5, 0.0], DOWN_QUAT, 0.04),  # wrong shape
]


def test_bad_targets_are_rejected_and_never_reach_ctrl(sim):
    model, data = sim
    q0 = data.qpos.copy()
    ctrl = PyController(model, data, q_home=data.qpos[:7].copy())
    p0, quat0 = tcp(model, data)
    good = (p0 + [0.02, 0.0, 0.0], quat0, 0.03)
    assert ctrl.set_ee_target(*good)
    for pos, quat, width in BAD_EE:
        assert ctrl.set_ee_target(pos, quat, width) is False
    for q, width in [(np.full(7, np.nan), 0.04), (np.full(7, 5.0), 0.04), (np.zeros(6), 0.04), (q0[:7], np.inf)]:
        assert ctrl.set_joint_target(q, width) is False
    np.testing.assert_allclose(ctrl.target_pos, good[0])
    ctrls = []
    for _ in range(50):
        ctrl.step(1)
        ctrls.append(data.ctrl.copy())
    # a twin that only ever saw the good target applies the very same torques
    data2 = mujoco.MjData(model)
    data2.qpos[:] = q0
    mujoco.mj_forward(model, data2)
    twin = PyController(model, data2, q_home=q0[:7])
    assert twin.set_ee_target(*good)
    for k in range(50):
        twin.step(1)
        np.testing.assert_array_equal(data2.ctrl, ctrls[k])
    assert np.all(np.isfinite(np.array(ctrls)))


def test_torques_are_clamped_to_ctrlrange(sim):
    model, data = sim
    ctrl = PyController(model, data, kp_pos=1e6, kp_rot=1e6, max_pos_err=1.0, max_rot_err=math.pi)
    p0, q0 = tcp(model, data)
    assert ctrl.set_ee_target(p0 + [0.2, 0.2, -0.1], quat_mul(quat_from_rotvec([0.5, 0.0, 0.5]), q0), 0.0)
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    saturated = False
    for _ in range(20):
        ctrl.step(1)
        assert np.all(data.ctrl >= lo) and np.all(data.ctrl <= hi)
        saturated |= bool(np.any(np.isclose(np.abs(data.ctrl[:7]), hi[:7])))
    assert saturated  # the clamp was exercised


def test_reset_takes_current_pose_as_target(sim):
    model, data = sim
    ctrl = PyController(model, data)
    data.qpos[0] += 0.3
    mujoco.mj_forward(model, data)
    ctrl.reset()
    np.testing.assert_allclose(ctrl.target_pos, tcp(model, data)[0])


def test_make_controller_kinds(sim):
    model, data = sim
    assert isinstance(make_controller(model, data, "python"), PyController)
    auto = make_controller(model, data, "auto")
    for method in ("reset", "set_ee_target", "set_joint_target", "step"):
        assert callable(getattr(auto, method))
    with pytest.raises(ValueError, match="kind"):
        make_controller(model, data, "matlab")
    try:
        from robo.drivers.rt import MujocoController  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            make_controller(model, data, "cpp")
