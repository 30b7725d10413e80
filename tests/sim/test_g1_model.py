"""The Unitree G1 MJCF models (MuJoCo) and its URDF (pinocchio) agree: forward kinematics of every link and
TCP frame at random configurations, the joint-space inertia and the gravity torques."""

from __future__ import annotations

import mujoco
import numpy as np
import pinocchio as pin
import pytest

from robo.sim.g1 import ASSETS, JOINTS, STAND_HEIGHT, URDF_PATH

MODELS = {"g1.xml": np.zeros(3), "g1_welded.xml": np.array([0.0, 0.0, STAND_HEIGHT])}


def _models(xml: str):
    mj_model = mujoco.MjModel.from_xml_path(str(ASSETS / xml))
    pin_model = pin.buildModelFromUrdf(str(URDF_PATH))
    return mj_model, mujoco.MjData(mj_model), pin_model, pin_model.createData()


def _set_random(rng, mj_model, mj_data, pin_model) -> np.ndarray:
    """Random joint angles inside the limits into MuJoCo (free joint, if any, at the origin) -> pinocchio q."""
    mj_data.qpos[:] = 0.0
    if mj_model.nq > len(JOINTS):
        mj_data.qpos[3] = 1.0  # free joint: identity orientation at the world origin
    q_pin = pin.neutral(pin_model)
    for name in JOINTS:
        jm = mj_model.joint(name).id
        value = rng.uniform(*mj_model.jnt_range[jm])
        mj_data.qpos[mj_model.jnt_qposadr[jm]] = value
        q_pin[pin_model.joints[pin_model.getJointId(name)].idx_q] = value
    return q_pin


@pytest.mark.parametrize("xml", list(MODELS))
def test_forward_kinematics_agree_at_random_configurations(xml):
    mj_model, mj_data, pin_model, pin_data = _models(xml)
    offset = MODELS[xml]  # where the MJCF puts the pelvis: the URDF is rooted at it
    assert pin_model.nq == 29 and [pin_model.names[i] for i in range(1, pin_model.njoints)] == list(JOINTS)
    bodies = [mj_model.body(i).name for i in range(1, mj_model.nbody)]
    sites = [mj_model.site(i).name for i in range(mj_model.nsite)]
    assert {"left_palm", "right_palm", "head_link", "left_rubber_hand"} <= set(bodies) | set(sites)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(20):
        q_pin = _set_random(rng, mj_model, mj_data, pin_model)
        mujoco.mj_kinematics(mj_model, mj_data)
        pin.framesForwardKinematics(pin_model, pin_data, q_pin)
        pairs = [(mj_data.xpos[mj_model.body(n).id], mj_data.xmat[mj_model.body(n).id], n) for n in bodies]
        pairs += [(mj_data.site_xpos[mj_model.site(n).id], mj_data.site_xmat[mj_model.site(n).id], n) for n in sites]
        for pos, mat, name in pairs:
            placement = pin_data.oMf[pin_model.getFrameId(name)]
            err = float(np.abs(placement.translation + offset - pos).max())
            worst = max(worst, err)
            assert err < 1e-6, (name, err)  # m
            np.testing.assert_allclose(placement.rotation, mat.reshape(3, 3), atol=1e-6)
    assert worst < 1e-6


def test_mass_matrix_and_gravity_agree():
    """Same inertial parameters: M(q) less MuJoCo's armature, and gravity torques, match pinocchio (welded base)."""
    mj_model, mj_data, pin_model, pin_data = _models("g1_welded.xml")
    rng = np.random.default_rng(1)
    n = mj_model.nv
    M_mj = np.zeros((n, n))
    for _ in range(5):
        q = _set_random(rng, mj_model, mj_data, pin_model)
        mj_data.qvel[:] = 0.0
        mujoco.mj_forward(mj_model, mj_data)
        mujoco.mj_fullM(mj_model, mj_data, M_mj)
        M_pin = pin.crba(pin_model, pin_data, q)
        M_pin = np.triu(M_pin) + np.triu(M_pin, 1).T
        np.testing.assert_allclose(M_mj - np.diag(mj_model.dof_armature), M_pin, atol=1e-6)  # kg m^2
        g_pin = pin.computeGeneralizedGravity(pin_model, pin_data, q)
        np.testing.assert_allclose(mj_data.qfrc_bias, g_pin, atol=1e-6)  # N m
        assert np.abs(g_pin).max() > 1.0  # the arms and torso are loaded: the comparison is not vacuous


def test_published_figures():
    """Spot checks against the published table: total mass, joint limits and efforts, motor order."""
    mj_model, _, pin_model, _ = _models("g1.xml")
    assert sum(mj_model.body_mass) == pytest.approx(33.34, abs=0.01)  # kg (URDF total, no hands)
    left_elbow = pin_model.getJointId("left_elbow_joint") - 1
    assert pin_model.lowerPositionLimit[left_elbow] == pytest.approx(-1.0472)
    assert pin_model.effortLimit[left_elbow] == pytest.approx(25.0)
    assert list(JOINTS).index("waist_yaw_joint") == 12 and list(JOINTS).index("right_wrist_yaw_joint") == 28
