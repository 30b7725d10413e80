"""The C++ pinocchio model (reduced to 7 DoF) agrees with MuJoCo on the Panda: FK, Jacobian,
mass matrix, gravity and Coriolis terms at random configurations."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from conftest import MJCF, URDF

from robo.drivers import rt


@pytest.fixture(scope="module")
def pair():
    model = mujoco.MjModel.from_xml_path(str(MJCF))
    data = mujoco.MjData(model)
    pin = rt.RobotModel(str(URDF))
    pin.set_armature(model.dof_armature[:7])
    return model, data, pin


def _random_q(rng, pin):
    lim = pin.limits()
    return rng.uniform(lim["q_min"], lim["q_max"])


def _mujoco_terms(model, data, q, dq):
    data.qpos[:] = 0.0  # fingers closed: the reduced pinocchio model locks them at 0
    data.qvel[:] = 0.0
    data.qpos[:7] = q
    data.qvel[:7] = dq
    mujoco.mj_forward(model, data)
    site = model.site("tcp").id
    jacp = np.zeros((3, model.nv))
    jacr = np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jacp, jacr, site)
    M = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, M)
    return {
        "tcp_pos": data.site_xpos[site].copy(),
        "tcp_rot": data.site_xmat[site].reshape(3, 3).copy(),
        "J": np.vstack([jacp[:, :7], jacr[:, :7]]),
        "M": M[:7, :7],
        "bias": data.qfrc_bias[:7].copy(),  # C(q, dq) dq + g(q)
    }


def test_limits_match_mjcf(pair):
    model, _, pin = pair
    lim = pin.limits()
    np.testing.assert_allclose(lim["q_min"], model.jnt_range[:7, 0], atol=1e-9)
    np.testing.assert_allclose(lim["q_max"], model.jnt_range[:7, 1], atol=1e-9)
    np.testing.assert_allclose(lim["tau_max"], model.actuator_ctrlrange[:7, 1], atol=1e-9)  # N m


def test_kinematics_agree(pair):
    model, data, pin = pair
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = _random_q(rng, pin)
        ours = pin.compute(q, np.zeros(7))
        ref = _mujoco_terms(model, data, q, np.zeros(7))
        np.testing.assert_allclose(ours["tcp_pos"], ref["tcp_pos"], atol=1e-9)  # m
        np.testing.assert_allclose(ours["tcp_rot"], ref["tcp_rot"], atol=1e-9)
        np.testing.assert_allclose(ours["J"], ref["J"], atol=1e-9)  # m/rad, 1


def test_dynamics_agree(pair):
    model, data, pin = pair
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = _random_q(rng, pin)
        dq = rng.uniform(-1.0, 1.0, 7)
        ours = pin.compute(q, dq)
        ref = _mujoco_terms(model, data, q, dq)
        np.testing.assert_allclose(ours["M"], ref["M"], atol=1e-8)  # kg m^2, armature included
        np.testing.assert_allclose(ours["nle"], ref["bias"], atol=1e-7)  # N m
        grav = _mujoco_terms(model, data, q, np.zeros(7))["bias"]
        np.testing.assert_allclose(ours["g"], grav, atol=1e-8)  # N m
        assert np.linalg.norm(ours["g"]) > 1.0  # the comparison is not vacuous


def test_finger_opening_does_not_change_gravity(pair):
    """The fingers are locked closed in the model; symmetric openings move no mass off-axis."""
    model, data, pin = pair
    q = np.array([0.3, -0.5, 0.2, -2.0, 0.1, 1.8, 0.4])
    data.qpos[:7] = q
    data.qvel[:] = 0
    data.qpos[7:9] = 0.04
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(pin.compute(q, np.zeros(7))["g"], data.qfrc_bias[:7], atol=1e-9)


def test_bad_model_inputs_raise():
    with pytest.raises(RuntimeError, match="URDF not found"):
        rt.RobotModel("/nonexistent/panda.urdf")
    with pytest.raises(RuntimeError, match="frame 'nope'"):
        rt.RobotModel(str(URDF), tcp_frame="nope")
    with pytest.raises(RuntimeError, match="joint 'jointX'"):
        rt.RobotModel(str(URDF), arm_joints=["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "jointX"])
