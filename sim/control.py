"""Python reference controller for the MuJoCo Panda (operational-space + joint impedance).

Implements the controller contract of docs/CONTRACTS.md on a `mujoco.MjModel/MjData` pair:

    ctrl.reset()                                       # target := current pose
    ctrl.set_ee_target(pos, quat_wxyz, gripper_width)  # -> bool, False = rejected (last target kept)
    ctrl.set_joint_target(q, gripper_width)            # -> bool
    ctrl.step(n_ticks)                                 # n x (control law -> limits -> data.ctrl -> mj_step)

The operational-space law (Khatib) on the TCP site, per tick:

    e      = clip(x_target - x)            reference limiting: |e_pos| <= max_pos_err, |e_rot| <= max_rot_err
    F      = Lambda (kp e - kd J qd)       Lambda = (J M^-1 J^T)^-1, the task-space inertia
    tau    = J^T F + N^T (kp_null (q_home - q) - kd_null qd) + qfrc_bias
    N^T    = I - J^T Jbar^T,  Jbar = M^-1 J^T Lambda  (dynamically consistent null space)

then clamped to the actuator ctrlrange. The per-tick error clip (SERL-style reference limiting) bounds
both the speed (terminal velocity kp*max_err/kd) and the force pushed into contacts when the target is
blocked. The C++ twin is `robo.drivers.rt.MujocoController`; `make_controller` picks one.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from robo.geometry import quat_from_mat, quat_from_rotvec, quat_mul, rotvec_from_quat

ASSETS = Path(__file__).resolve().parent / "assets"
URDF_PATH = ASSETS / "panda.urdf"

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
ARM_ACTUATORS = tuple(f"actuator{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")
GRIPPER_ACTUATOR = "actuator_gripper"
TCP_SITE = "tcp"
GRIPPER_MAX_WIDTH = 0.08  # m, both fingers fully open
# Franka "ready" posture, rad: the default null-space home.
READY_Q = np.array([0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4])


# Rotation helpers live in robo.geometry (shared with the HAL and teleop); re-exported here.

DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])  # TCP pointing straight down (wxyz), fingers closing along world y


def ee_delta_target(
    pos: np.ndarray, quat: np.ndarray, action: np.ndarray, *, max_dpos: float, max_drot: float,
    workspace_lo: np.ndarray, workspace_hi: np.ndarray, max_tilt_rad: float = math.pi, gripper: str = "binary",
) -> tuple[np.ndarray, np.ndarray, float]:
    """The `ee_delta` action semantics, one implementation for the sim tasks and the arm drivers.

    action (7,): [dx, dy, dz] m, [drx, dry, drz] rad (world-frame rotation vector applied to the last
    target orientation), gripper in [-1, 1]; NaN components mean "no change". Deltas are clipped to
    +-max_dpos / +-max_drot, the position to the workspace box, the orientation to within
    `max_tilt_rad` of pointing down. gripper "binary": > 0 closes fully (width 0 m: full grasp force),
    otherwise open; "linear": width = max * (1 - g) / 2. Returns (pos (3,) m, quat wxyz (4,), width m).
    """
    a = np.asarray(action, dtype=np.float64).reshape(7)
    a = np.where(np.isfinite(a), a, 0.0)
    lim = np.array([max_dpos] * 3 + [max_drot] * 3 + [1.0], np.float32)  # float32: the action spaces' bounds
    a = np.clip(a, -lim, lim)
    new_pos = np.clip(np.asarray(pos, np.float64) + a[:3], workspace_lo, workspace_hi)
    q = quat_mul(quat_from_rotvec(a[3:6]), quat)
    dev = rotvec_from_quat(quat_mul(q, DOWN_QUAT * [1, -1, -1, -1]))  # rotation from DOWN to q
    n = float(np.linalg.norm(dev))
    if n > max_tilt_rad:
        q = quat_mul(quat_from_rotvec(dev * (max_tilt_rad / n)), DOWN_QUAT)
    q = q / np.linalg.norm(q)
    if gripper == "binary":
        width = 0.0 if a[6] > 0.0 else GRIPPER_MAX_WIDTH
    else:
        width = GRIPPER_MAX_WIDTH * (1.0 - a[6]) / 2.0
    return new_pos, q, float(width)


def _clip_norm(v: np.ndarray, max_norm: float) -> None:
    """Scale `v` in place so that its norm is at most `max_norm`."""
    n = math.sqrt(float(v @ v))
    if n > max_norm:
        v *= max_norm / n


# ----------------------------------------------------------------------------- controller


class PyController:
    """Operational-space / joint-impedance controller writing torques into `data.ctrl`.

    Gains are normalised by the task-space inertia, so `kp_pos`/`kp_rot` are in 1/s^2 (the closed loop
    behaves like x'' = kp e - kd x'). Damping is `2 * zeta * sqrt(kp)`. The null-space posture gains are
    joint-space (N m/rad, N m s/rad).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        *,
        q_home: np.ndarray | None = None,
        kp_pos: float = 1500.0,
        kp_rot: float = 1500.0,
        zeta: float = 0.8,
        kp_null: float = 10.0,
        max_pos_err: float = 0.01,
        max_rot_err: float = 0.1,
        kp_joint: tuple[float, ...] = (600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0),
        kd_joint: tuple[float, ...] = (50.0, 50.0, 50.0, 50.0, 20.0, 15.0, 8.0),
        max_joint_err: float = 0.1,
        kp_gripper: float = 3000.0,
        kd_gripper: float = 20.0,
        reach: float = 1.2,
    ) -> None:
        self.model, self.data = model, data
        jids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ARM_JOINTS]
        if min(jids) < 0:
            raise ValueError(f"model lacks one of the arm joints {ARM_JOINTS}")
        dofs = [int(model.jnt_dofadr[j]) for j in jids]
        qadr = [int(model.jnt_qposadr[j]) for j in jids]
        if dofs != list(range(dofs[0], dofs[0] + 7)) or qadr != list(range(qadr[0], qadr[0] + 7)):
            raise ValueError("arm joints joint1..7 must be consecutive in qpos/qvel")
        self._dof = slice(dofs[0], dofs[0] + 7)  # slices give views: no copies in the hot loop
        self._qadr = slice(qadr[0], qadr[0] + 7)
        self._act = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in ARM_ACTUATORS])
        self._act_g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, GRIPPER_ACTUATOR)
        self._site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, TCP_SITE)
        fj = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in FINGER_JOINTS]
        if min(self._act) < 0 or self._act_g < 0 or self._site < 0 or min(fj) < 0:
            raise ValueError("model lacks the Panda actuators, fingers or the 'tcp' site")
        self._fq = np.array([model.jnt_qposadr[j] for j in fj])
        self._fv = np.array([model.jnt_dofadr[j] for j in fj])
        if self._act.tolist() != list(range(self._act[0], self._act[0] + 7)):
            raise ValueError("actuator1..7 must be consecutive")
        self._ctrl = slice(int(self._act[0]), int(self._act[0]) + 7)
        self._tau_lo = model.actuator_ctrlrange[self._ctrl, 0].copy()
        self._tau_hi = model.actuator_ctrlrange[self._ctrl, 1].copy()
        self._g_lo, self._g_hi = model.actuator_ctrlrange[self._act_g]
        self._q_lo = model.jnt_range[jids, 0].copy()
        self._q_hi = model.jnt_range[jids, 1].copy()
        self._base = data.xpos[model.jnt_bodyid[jids[0]]].copy()  # arm base, for the reach check

        self.q_home = np.array(READY_Q if q_home is None else q_home, dtype=np.float64)
        self.kp = np.array([kp_pos] * 3 + [kp_rot] * 3)
        self.kd = 2.0 * zeta * np.sqrt(self.kp)
        self.kp_null, self.kd_null = kp_null, 2.0 * math.sqrt(kp_null)
        self.max_pos_err, self.max_rot_err = max_pos_err, max_rot_err
        self.kp_joint, self.kd_joint = np.array(kp_joint), np.array(kd_joint)
        self.max_joint_err = max_joint_err
        self.kp_gripper, self.kd_gripper = kp_gripper, kd_gripper
        self.reach = reach

        nv = model.nv
        self._jac = np.zeros((6, nv))
        self._jac_minv = np.zeros((6, nv))
        self._lam_inv = np.zeros((6, 6))
        self._x = np.zeros(6)
        self._e = np.zeros(6)
        self._qc = np.zeros(4)
        self._qc_conj = np.zeros(4)
        self._qe = np.zeros(4)
        self._eye6 = 1e-6 * np.eye(6)  # regulariser: keeps Lambda finite near singularities
        self.mode = "ee"
        self.target_pos = np.zeros(3)
        self.target_quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.target_q = self.q_home.copy()
        self.target_width = GRIPPER_MAX_WIDTH
        self.reset()

    # ------------------------------------------------------------------ contract

    def reset(self) -> None:
        """Target := current TCP pose and finger width; back to operational-space mode."""
        mujoco.mj_kinematics(self.model, self.data)
        self.target_pos[:] = self.data.site_xpos[self._site]
        self.target_quat[:] = quat_from_mat(self.data.site_xmat[self._site])
        self.target_q[:] = self.data.qpos[self._qadr]
        self.target_width = float(self.gripper_width)
        self.mode = "ee"

    def set_ee_target(self, pos: np.ndarray, quat_wxyz: np.ndarray, gripper_width: float) -> bool:
        """World-frame TCP target (m, wxyz) and finger width (m). False = rejected, last target kept."""
        pos = np.asarray(pos, dtype=np.float64).reshape(-1)
        quat = np.asarray(quat_wxyz, dtype=np.float64).reshape(-1)
        if pos.shape != (3,) or quat.shape != (4,) or not self._width_ok(gripper_width):
            return False
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
            return False
        qn = float(np.linalg.norm(quat))
        if not 0.9 < qn < 1.1 or np.linalg.norm(pos - self._base) > self.reach:
            return False
        self.target_pos[:] = pos
        self.target_quat[:] = quat / qn
        self.target_width = float(np.clip(gripper_width, 0.0, GRIPPER_MAX_WIDTH))
        self.mode = "ee"
        return True

    def set_joint_target(self, q: np.ndarray, gripper_width: float) -> bool:
        """Arm joint target (7,) rad inside the joint limits and finger width (m). False = rejected."""
        q = np.asarray(q, dtype=np.float64).reshape(-1)
        if q.shape != (7,) or not np.all(np.isfinite(q)) or not self._width_ok(gripper_width):
            return False
        if np.any(q < self._q_lo - 1e-6) or np.any(q > self._q_hi + 1e-6):
            return False
        self.target_q[:] = q
        self.target_width = float(np.clip(gripper_width, 0.0, GRIPPER_MAX_WIDTH))
        self.mode = "joint"
        return True

    def step(self, n_ticks: int = 1) -> None:
        """Run `n_ticks` x (control law -> torque clamp -> data.ctrl -> mj_step)."""
        m, d = self.model, self.data
        law = self._ee_law if self.mode == "ee" else self._joint_law
        for _ in range(int(n_ticks)):
            law()
            self._gripper_law()
            mujoco.mj_step(m, d)

    # ------------------------------------------------------------------ state

    @property
    def gripper_width(self) -> float:
        """Distance between the finger pads, m."""
        return float(self.data.qpos[self._fq].sum())

    def _width_ok(self, w: float) -> bool:
        try:
            w = float(w)
        except (TypeError, ValueError):
            return False
        return math.isfinite(w) and -1e-6 <= w <= GRIPPER_MAX_WIDTH + 1e-6

    # ------------------------------------------------------------------ control laws

    def _ee_law(self) -> None:
        m, d, dof = self.model, self.data, self._dof
        # Kinematics, qfrc_bias and the factorised mass matrix are those mj_step computed for the
        # previous tick (a one-tick, 2 ms latency, as in a real 500 Hz loop); recomputing them
        # would double the cost of a tick.
        mujoco.mj_jacSite(m, d, self._jac[:3], self._jac[3:], self._site)
        mujoco.mj_solveM(m, d, self._jac_minv, self._jac)  # rows of J M^-1 (M symmetric), all dofs
        J, JMinv = self._jac[:, dof], self._jac_minv[:, dof]  # J is zero outside the arm dofs
        qd = d.qvel[dof]

        e = self._e
        np.subtract(self.target_pos, d.site_xpos[self._site], out=e[:3])
        _clip_norm(e[:3], self.max_pos_err)
        mujoco.mju_mat2Quat(self._qc, d.site_xmat[self._site])
        mujoco.mju_negQuat(self._qc_conj, self._qc)
        mujoco.mju_mulQuat(self._qe, self.target_quat, self._qc_conj)  # world-frame error rotation
        if self._qe[0] < 0:
            self._qe *= -1.0
        mujoco.mju_quat2Vel(e[3:], self._qe, 1.0)
        _clip_norm(e[3:], self.max_rot_err)

        # tau = J^T Lam (a - J M^-1 tau0) + tau0 + bias: the task force plus the null-space posture
        # torque tau0 projected by N^T = I - J^T Lam J M^-1; one Cholesky solve with Lam^-1.
        tau0 = self.kp_null * (self.q_home - d.qpos[self._qadr]) - self.kd_null * qd
        rhs = self.kp * e - self.kd * (J @ qd) - JMinv @ tau0
        np.matmul(JMinv, J.T, out=self._lam_inv)
        self._lam_inv += self._eye6
        mujoco.mju_cholFactor(self._lam_inv, 0.0)
        mujoco.mju_cholSolve(self._x, self._lam_inv, rhs)
        tau = J.T @ self._x + tau0 + d.qfrc_bias[dof]
        np.clip(tau, self._tau_lo, self._tau_hi, out=d.ctrl[self._ctrl])

    def _joint_law(self) -> None:
        d = self.data
        err = self.target_q - d.qpos[self._qadr]
        np.clip(err, -self.max_joint_err, self.max_joint_err, out=err)
        tau = self.kp_joint * err - self.kd_joint * d.qvel[self._dof] + d.qfrc_bias[self._dof]
        np.clip(tau, self._tau_lo, self._tau_hi, out=d.ctrl[self._ctrl])

    def _gripper_law(self) -> None:
        d = self.data
        w = d.qpos[self._fq[0]] + d.qpos[self._fq[1]]
        wd = d.qvel[self._fv[0]] + d.qvel[self._fv[1]]
        f = self.kp_gripper * (self.target_width - w) - self.kd_gripper * wd
        d.ctrl[self._act_g] = min(max(f, self._g_lo), self._g_hi)


def make_controller(
    model: mujoco.MjModel, data: mujoco.MjData, kind: str = "auto", **kwargs: Any
) -> Any:
    """Controller for `model/data`: "cpp" (robo.drivers.rt), "python" (PyController) or "auto".

    "auto" returns the C++ controller when `robo.drivers.rt` imports, else `PyController`.
    Keyword arguments (e.g. `q_home`) are passed to whichever is built.
    """
    if kind not in ("auto", "cpp", "python"):
        raise ValueError(f"controller kind must be 'auto', 'cpp' or 'python', got {kind!r}")
    if kind in ("auto", "cpp"):
        try:
            from robo.drivers import rt  # type: ignore[attr-defined]

            cls = rt.MujocoController  # the package exists before its extension is built
        except (ImportError, AttributeError) as err:
            if kind == "cpp":
                raise ImportError(f"robo.drivers.rt.MujocoController is not available: {err}") from err
        else:
            try:
                return cls(model, data, urdf_path=str(URDF_PATH), **kwargs)
            except TypeError as err:  # signature mismatch between the two implementations
                if kind == "cpp":
                    raise
                warnings.warn(f"robo.drivers.rt.MujocoController rejected {sorted(kwargs)}: {err}; "
                              "using the Python controller", RuntimeWarning, stacklevel=2)
    return PyController(model, data, **kwargs)
