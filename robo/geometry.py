"""Rotation helpers (wxyz quaternions, rotation vectors in rad, 3x3 matrices), via MuJoCo's C math.

One copy for the sim tasks, the controllers' Python side, the HAL drivers and teleop devices.
"""

from __future__ import annotations

import mujoco
import numpy as np

__all__ = ["mat_from_quat", "quat_conj", "quat_from_mat", "quat_from_rotvec", "quat_mul", "rotvec_from_quat"]


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (= inverse for unit quaternions) of a wxyz quaternion."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions."""
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


def quat_from_rotvec(rv: np.ndarray) -> np.ndarray:
    """Rotation vector (rad) -> wxyz quaternion."""
    rv = np.asarray(rv, dtype=np.float64)
    angle = float(np.linalg.norm(rv))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    out = np.empty(4)
    mujoco.mju_axisAngle2Quat(out, rv / angle, angle)
    return out


def rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    """wxyz quaternion -> rotation vector (rad), shortest way (|angle| <= pi)."""
    q = np.asarray(q, dtype=np.float64)
    if q[0] < 0:
        q = -q
    out = np.empty(3)
    mujoco.mju_quat2Vel(out, q, 1.0)
    return out


def quat_from_mat(mat: np.ndarray) -> np.ndarray:
    """3x3 (or flat 9) rotation matrix -> wxyz quaternion with w >= 0."""
    out = np.empty(4)
    mujoco.mju_mat2Quat(out, np.ascontiguousarray(mat, dtype=np.float64).reshape(9))
    return out if out[0] >= 0 else -out


def mat_from_quat(q: np.ndarray) -> np.ndarray:
    """wxyz quaternion -> 3x3 rotation matrix."""
    out = np.empty(9)
    mujoco.mju_quat2Mat(out, np.asarray(q, dtype=np.float64))
    return out.reshape(3, 3)
