"""MJCF (MuJoCo) and URDF (pinocchio) Panda models agree: forward kinematics at random configurations."""

from __future__ import annotations

import mujoco
import numpy as np
import pinocchio as pin

from robo.sim.control import ASSETS, URDF_PATH

LINKS = [f"link{i}" for i in range(8)] + ["hand", "left_finger", "right_finger"]
JOINTS = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]


def test_mjcf_and_urdf_forward_kinematics_agree():
    mj_model = mujoco.MjModel.from_xml_path(str(ASSETS / "panda.xml"))
    mj_data = mujoco.MjData(mj_model)
    pin_model = pin.buildModelFromUrdf(str(URDF_PATH))
    pin_data = pin_model.createData()
    assert pin_model.nq == 9 and mj_model.nq == 9
    rng = np.random.default_rng(0)
    tcp = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_SITE, "tcp")
    worst = 0.0
    for _ in range(20):
        q_pin = pin.neutral(pin_model)
        for name in JOINTS:
            jm = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_JOINT, name)
            lo, hi = mj_model.jnt_range[jm]
            value = rng.uniform(lo, hi)
            mj_data.qpos[mj_model.jnt_qposadr[jm]] = value
            q_pin[pin_model.joints[pin_model.getJointId(name)].idx_q] = value
        mujoco.mj_kinematics(mj_model, mj_data)
        pin.framesForwardKinematics(pin_model, pin_data, q_pin)
        pairs = [(mj_data.xpos[mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, n)],
                  mj_data.xmat[mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, n)], n) for n in LINKS]
        pairs.append((mj_data.site_xpos[tcp], mj_data.site_xmat[tcp], "tcp"))
        for pos, mat, name in pairs:
            placement = pin_data.oMf[pin_model.getFrameId(name)]
            err = np.abs(placement.translation - pos).max()
            worst = max(worst, err)
            assert err < 1e-6, (name, err)  # m
            np.testing.assert_allclose(placement.rotation, mat.reshape(3, 3), atol=1e-6)
    assert worst < 1e-6


def test_mass_matrix_and_gravity_agree():
    """Same inertial parameters: M(q) (less MuJoCo's armature) and gravity torques match pinocchio."""
    mj_model = mujoco.MjModel.from_xml_path(str(ASSETS / "panda.xml"))
    mj_data = mujoco.MjData(mj_model)
    pin_model = pin.buildModelFromUrdf(str(URDF_PATH))
    pin_data = pin_model.createData()
    # both models order the joints joint1..7, finger_joint1, finger_joint2
    assert [pin_model.names[i] for i in range(1, pin_model.njoints)] == JOINTS
    rng = np.random.default_rng(1)
    M_mj = np.zeros((9, 9))
    for _ in range(5):
        q = rng.uniform(mj_model.jnt_range[:, 0], mj_model.jnt_range[:, 1])
        mj_data.qpos[:] = q
        mj_data.qvel[:] = 0.0
        mujoco.mj_forward(mj_model, mj_data)
        mujoco.mj_fullM(mj_model, mj_data, M_mj)
        M_pin = pin.crba(pin_model, pin_data, q)
        M_pin = np.triu(M_pin) + np.triu(M_pin, 1).T
        np.testing.assert_allclose(M_mj - np.diag(mj_model.dof_armature), M_pin, atol=1e-6)  # kg m^2
        g_pin = pin.computeGeneralizedGravity(pin_model, pin_data, q)
        np.testing.assert_allclose(mj_data.qfrc_bias, g_pin, atol=1e-6)  # N m
