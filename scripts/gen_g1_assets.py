"""Generate the Unitree G1 (29 DoF) MJCF and URDF under sim/assets/ from one table of published figures.

Source of the figures: Unitree's BSD-3 description `unitree_ros/robots/g1_description/g1_29dof_rev_1_0.urdf`
(joint offsets, axes, limits, efforts, speeds; link masses, centres of mass, inertias). Rotor inertia
(armature) per motor class as in MuJoCo Menagerie's `unitree_g1/g1_mjx.xml`. The two 0.001 kg helper
links (pelvis contour, logo) are left out. Geometry is primitive (capsules, spheres, boxes, after the
Menagerie `g1_mjx.xml` colliders), so CPU rendering stays fast; only the forearms, wrists, hands and
feet collide (the fixed-base tasks need no more).

Written files (both models come from the same numbers, so FK, M(q) and gravity agree:
tests/sim/test_g1_model.py):

    g1.urdf          fixed-base URDF rooted at the pelvis (pinocchio; the C++ controller)
    g1.xml           the floating-base robot (free joint at the pelvis), a motor per joint
    g1_welded.xml    the pelvis welded at standing height (the sim analogue of "balance controller +
                     rt/arm_sdk"): motors on the waist and arms, position servos holding the legs

    python scripts/gen_g1_assets.py
"""

from __future__ import annotations

import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "sim" / "assets"
STAND_HEIGHT = 0.793  # m, pelvis above the floor with the legs straight (g1_29dof_rev_1_0.xml)

# ----------------------------------------------------------------------------- the table
# mass [kg], centre of mass [m], inertia about the COM (ixx, iyy, izz, ixy, ixz, iyz) [kg m^2]
LINKS = {
    "pelvis": (3.813, (0, 0, -0.07605), (0.010549, 0.0093089, 0.0079184, 0, 2.1e-06, 0)),
    "left_hip_pitch_link": (1.35, (0.002741, 0.047791, -0.02606), (0.001811, 0.0014193, 0.0012812, 3.68e-05, -3.44e-05, 0.000171)),
    "left_hip_roll_link": (1.52, (0.029812, -0.001045, -0.087934), (0.0023773, 0.0024123, 0.0016595, -3.8e-06, -0.0003908, 1.84e-05)),
    "left_hip_yaw_link": (1.702, (-0.057709, -0.010981, -0.15078), (0.0057774, 0.0076124, 0.003149, -0.0005411, -0.0023948, -0.0007072)),
    "left_knee_link": (1.932, (0.005457, 0.003964, -0.12074), (0.011329, 0.011277, 0.0015168, 4.82e-05, -4.49e-05, -0.0007146)),
    "left_ankle_pitch_link": (0.074, (-0.007269, 0, 0.011137), (8.4e-06, 1.89e-05, 1.26e-05, 0, -2.9e-06, 0)),
    "left_ankle_roll_link": (0.608, (0.026505, 0, -0.016425), (0.0002231, 0.0016161, 0.0016667, 2e-07, 8.91e-05, -1e-07)),
    "right_hip_pitch_link": (1.35, (0.002741, -0.047791, -0.02606), (0.001811, 0.0014193, 0.0012812, -3.68e-05, -3.44e-05, -0.000171)),
    "right_hip_roll_link": (1.52, (0.029812, 0.001045, -0.087934), (0.0023773, 0.0024123, 0.0016595, 3.8e-06, -0.0003908, -1.84e-05)),
    "right_hip_yaw_link": (1.702, (-0.057709, 0.010981, -0.15078), (0.0057774, 0.0076124, 0.003149, 0.0005411, -0.0023948, 0.0007072)),
    "right_knee_link": (1.932, (0.005457, -0.003964, -0.12074), (0.011329, 0.011277, 0.0015168, -4.82e-05, 4.49e-05, 0.0007146)),
    "right_ankle_pitch_link": (0.074, (-0.007269, 0, 0.011137), (8.4e-06, 1.89e-05, 1.26e-05, 0, -2.9e-06, 0)),
    "right_ankle_roll_link": (0.608, (0.026505, 0, -0.016425), (0.0002231, 0.0016161, 0.0016667, -2e-07, 8.91e-05, 1e-07)),
    "waist_yaw_link": (0.214, (0.003494, 0.000233, 0.018034), (0.00010673, 0.00010422, 0.0001625, 2.703e-06, -7.631e-06, -2.01e-07)),
    "waist_roll_link": (0.086, (0, 2.3e-05, 0), (7.079e-06, 6.339e-06, 8.245e-06, 0, 0, 0)),
    "torso_link": (6.78, (0.000931, 0.000346, 0.15082), (0.05905, 0.047014, 0.025652, 3.3302e-05, -0.0017715, -2.2399e-05)),
    "head_link": (1.036, (0.005267, 0.000299, 0.449869), (0.004085051, 0.004185212, 0.001807911, -2.543e-06, -6.9455e-05, -3.726e-06)),
    "left_shoulder_pitch_link": (0.718, (0, 0.035892, -0.011628), (0.0004291, 0.000453, 0.000423, -9.2e-06, 6.4e-06, 2.26e-05)),
    "left_shoulder_roll_link": (0.643, (-0.000227, 0.00727, -0.063243), (0.0006177, 0.0006912, 0.0003894, -1e-06, 8.7e-06, -5.3e-06)),
    "left_shoulder_yaw_link": (0.734, (0.010773, -0.002949, -0.072009), (0.0009988, 0.0010605, 0.0004354, 7.9e-06, 0.0001412, -2.86e-05)),
    "left_elbow_link": (0.6, (0.064956, 0.004454, -0.010062), (0.0002891, 0.0004152, 0.0004197, 6.53e-05, 1.72e-05, -5.6e-06)),
    "left_wrist_roll_link": (0.08544498, (0.01713944778, 0.00053759094, 4.8864e-07), (4.821544023e-05, 3.722899093e-05, 5.482106541e-05, -4.24511021e-06, 5.10599e-09, -1.23525e-09)),
    "left_wrist_pitch_link": (0.48404956, (0.02299989837, -0.00111685314, -0.00111658096), (0.00016579646273, 0.0004295405741, 0.00042953697654, -1.231206746e-05, 1.231699194e-05, 8.1417712e-07)),
    "left_wrist_yaw_link": (0.08457647, (0.02200381568, 0.00049485096, 0.00053861123), (4.929128828e-05, 5.973338134e-05, 3.928083826e-05, -4.5735494e-07, 4.45867591e-06, 4.3217198e-07)),
    "left_rubber_hand": (0.17, (0.05361310808, -0.0029590524, 0.00215413091), (0.00010099485234748, 0.00028135871571621, 0.00021894770413514, 3.618590790516e-05, -7.4301518642e-07, 3.30189743286e-06)),
    "right_shoulder_pitch_link": (0.718, (0, -0.035892, -0.011628), (0.0004291, 0.000453, 0.000423, 9.2e-06, 6.4e-06, -2.26e-05)),
    "right_shoulder_roll_link": (0.643, (-0.000227, -0.00727, -0.063243), (0.0006177, 0.0006912, 0.0003894, 1e-06, 8.7e-06, 5.3e-06)),
    "right_shoulder_yaw_link": (0.734, (0.010773, 0.002949, -0.072009), (0.0009988, 0.0010605, 0.0004354, -7.9e-06, 0.0001412, 2.86e-05)),
    "right_elbow_link": (0.6, (0.064956, -0.004454, -0.010062), (0.0002891, 0.0004152, 0.0004197, -6.53e-05, 1.72e-05, 5.6e-06)),
    "right_wrist_roll_link": (0.08544498, (0.01713944778, -0.00053759094, 4.8864e-07), (4.821544023e-05, 3.722899093e-05, 5.482106541e-05, 4.24511021e-06, 5.10599e-09, 1.23525e-09)),
    "right_wrist_pitch_link": (0.48404956, (0.02299989837, 0.00111685314, -0.00111658096), (0.00016579646273, 0.0004295405741, 0.00042953697654, 1.231206746e-05, 1.231699194e-05, -8.1417712e-07)),
    "right_wrist_yaw_link": (0.08457647, (0.02200381568, -0.00049485096, 0.00053861123), (4.929128828e-05, 5.973338134e-05, 3.928083826e-05, 4.5735494e-07, 4.45867591e-06, -4.3217198e-07)),
    "right_rubber_hand": (0.17, (0.05361310808, 0.0029590524, 0.00215413091), (0.00010099485234748, 0.00028135871571621, 0.00021894770413514, -3.618590790516e-05, -7.4301518642e-07, -3.30189743286e-06)),
}

# Revolute joints in Unitree's motor order (0-28, g1_joint_index_dds.md):
# (joint, parent link, child link, origin xyz [m], origin rpy [rad], axis, lower, upper [rad], effort [N m], velocity [rad/s])
JOINTS = [
    ("left_hip_pitch_joint", "pelvis", "left_hip_pitch_link", (0, 0.064452, -0.1027), (0, 0, 0), "y", -2.5307, 2.8798, 88, 32),
    ("left_hip_roll_joint", "left_hip_pitch_link", "left_hip_roll_link", (0, 0.052, -0.030465), (0, -0.1749, 0), "x", -0.5236, 2.9671, 139, 20),
    ("left_hip_yaw_joint", "left_hip_roll_link", "left_hip_yaw_link", (0.025001, 0, -0.12412), (0, 0, 0), "z", -2.7576, 2.7576, 88, 32),
    ("left_knee_joint", "left_hip_yaw_link", "left_knee_link", (-0.078273, 0.0021489, -0.17734), (0, 0.1749, 0), "y", -0.087267, 2.8798, 139, 20),
    ("left_ankle_pitch_joint", "left_knee_link", "left_ankle_pitch_link", (0, -9.4445e-05, -0.30001), (0, 0, 0), "y", -0.87267, 0.5236, 35, 30),
    ("left_ankle_roll_joint", "left_ankle_pitch_link", "left_ankle_roll_link", (0, 0, -0.017558), (0, 0, 0), "x", -0.2618, 0.2618, 35, 30),
    ("right_hip_pitch_joint", "pelvis", "right_hip_pitch_link", (0, -0.064452, -0.1027), (0, 0, 0), "y", -2.5307, 2.8798, 88, 32),
    ("right_hip_roll_joint", "right_hip_pitch_link", "right_hip_roll_link", (0, -0.052, -0.030465), (0, -0.1749, 0), "x", -2.9671, 0.5236, 139, 20),
    ("right_hip_yaw_joint", "right_hip_roll_link", "right_hip_yaw_link", (0.025001, 0, -0.12412), (0, 0, 0), "z", -2.7576, 2.7576, 88, 32),
    ("right_knee_joint", "right_hip_yaw_link", "right_knee_link", (-0.078273, -0.0021489, -0.17734), (0, 0.1749, 0), "y", -0.087267, 2.8798, 139, 20),
    ("right_ankle_pitch_joint", "right_knee_link", "right_ankle_pitch_link", (0, 9.4445e-05, -0.30001), (0, 0, 0), "y", -0.87267, 0.5236, 35, 30),
    ("right_ankle_roll_joint", "right_ankle_pitch_link", "right_ankle_roll_link", (0, 0, -0.017558), (0, 0, 0), "x", -0.2618, 0.2618, 35, 30),
    ("waist_yaw_joint", "pelvis", "waist_yaw_link", (0, 0, 0), (0, 0, 0), "z", -2.618, 2.618, 88, 32),
    ("waist_roll_joint", "waist_yaw_link", "waist_roll_link", (-0.0039635, 0, 0.044), (0, 0, 0), "x", -0.52, 0.52, 35, 30),
    ("waist_pitch_joint", "waist_roll_link", "torso_link", (0, 0, 0), (0, 0, 0), "y", -0.52, 0.52, 35, 30),
    ("left_shoulder_pitch_joint", "torso_link", "left_shoulder_pitch_link", (0.0039563, 0.10022, 0.24778), (0.27931, 5.4949e-05, -0.00019159), "y", -3.0892, 2.6704, 25, 37),
    ("left_shoulder_roll_joint", "left_shoulder_pitch_link", "left_shoulder_roll_link", (0, 0.038, -0.013831), (-0.27925, 0, 0), "x", -1.5882, 2.2515, 25, 37),
    ("left_shoulder_yaw_joint", "left_shoulder_roll_link", "left_shoulder_yaw_link", (0, 0.00624, -0.1032), (0, 0, 0), "z", -2.618, 2.618, 25, 37),
    ("left_elbow_joint", "left_shoulder_yaw_link", "left_elbow_link", (0.015783, 0, -0.080518), (0, 0, 0), "y", -1.0472, 2.0944, 25, 37),
    ("left_wrist_roll_joint", "left_elbow_link", "left_wrist_roll_link", (0.1, 0.00188791, -0.01), (0, 0, 0), "x", -1.972222054, 1.972222054, 25, 37),
    ("left_wrist_pitch_joint", "left_wrist_roll_link", "left_wrist_pitch_link", (0.038, 0, 0), (0, 0, 0), "y", -1.614429558, 1.614429558, 5, 22),
    ("left_wrist_yaw_joint", "left_wrist_pitch_link", "left_wrist_yaw_link", (0.046, 0, 0), (0, 0, 0), "z", -1.614429558, 1.614429558, 5, 22),
    ("right_shoulder_pitch_joint", "torso_link", "right_shoulder_pitch_link", (0.0039563, -0.10021, 0.24778), (-0.27931, 5.4949e-05, 0.00019159), "y", -3.0892, 2.6704, 25, 37),
    ("right_shoulder_roll_joint", "right_shoulder_pitch_link", "right_shoulder_roll_link", (0, -0.038, -0.013831), (0.27925, 0, 0), "x", -2.2515, 1.5882, 25, 37),
    ("right_shoulder_yaw_joint", "right_shoulder_roll_link", "right_shoulder_yaw_link", (0, -0.00624, -0.1032), (0, 0, 0), "z", -2.618, 2.618, 25, 37),
    ("right_elbow_joint", "right_shoulder_yaw_link", "right_elbow_link", (0.015783, 0, -0.080518), (0, 0, 0), "y", -1.0472, 2.0944, 25, 37),
    ("right_wrist_roll_joint", "right_elbow_link", "right_wrist_roll_link", (0.1, -0.00188791, -0.01), (0, 0, 0), "x", -1.972222054, 1.972222054, 25, 37),
    ("right_wrist_pitch_joint", "right_wrist_roll_link", "right_wrist_pitch_link", (0.038, 0, 0), (0, 0, 0), "y", -1.614429558, 1.614429558, 5, 22),
    ("right_wrist_yaw_joint", "right_wrist_pitch_link", "right_wrist_yaw_link", (0.046, 0, 0), (0, 0, 0), "z", -1.614429558, 1.614429558, 5, 22),
]

# Rigidly attached links with mass (parent link, origin xyz, origin rpy) and massless frames.
FIXED_LINKS = {
    "head_link": ("torso_link", (0.0039635, 0, -0.044), (0, 0, 0)),
    "left_rubber_hand": ("left_wrist_yaw_link", (0.0415, 0.003, 0), (0, 0, 0)),
    "right_rubber_hand": ("right_wrist_yaw_link", (0.0415, -0.003, 0), (0, 0, 0)),
}
# The controller's TCP frames: the middle of each rubber hand (where a squeezed box touches it).
FRAMES = {
    "left_palm": ("left_wrist_yaw_link", (0.11, 0.003, 0), (0, 0, 0)),
    "right_palm": ("right_wrist_yaw_link", (0.11, -0.003, 0), (0, 0, 0)),
    "imu_in_pelvis": ("pelvis", (0.04525, 0, -0.08339), (0, 0, 0)),
    "imu_in_torso": ("torso_link", (-0.03959, -0.00224, 0.14792), (0, 0, 0)),
    "d435_link": ("torso_link", (0.0576235, 0.01753, 0.42987), (0, 0.8307767239493009, 0)),
}

# Rotor inertia by motor (effort class) [kg m^2], as in Menagerie's g1_mjx.xml.
ARMATURE = {88: 0.0102, 139: 0.0251, 35: 0.0072, 25: 0.0036, 5: 0.00425}
JOINT_DAMPING = 0.05  # N m s/rad (unitree_mujoco's g1_29dof.xml)
LEG_SERVO_KP = {"hip": 75.0, "knee": 75.0, "ankle": 20.0}  # N m/rad, g1_mjx.xml position actuators
LEG_SERVO_KV = 2.0  # N m s/rad

# Primitive geometry per link, link frame: ("capsule", from, to, r) | ("sphere", pos, r) | ("box", pos, half)
GEOMS = {
    "pelvis": [("sphere", (0, 0, -0.05), 0.07)],
    "left_hip_pitch_link": [("capsule", (0, 0.02, -0.01), (0, 0.055, -0.03), 0.045)],
    "left_hip_roll_link": [("capsule", (0.025, 0, -0.04), (0.025, 0, -0.12), 0.06)],
    "left_hip_yaw_link": [("capsule", (-0.01, 0, -0.04), (-0.07, 0, -0.16), 0.055)],
    "left_knee_link": [("capsule", (0, 0, -0.06), (0, 0, -0.21), 0.045), ("capsule", (-0.02, 0, -0.05), (-0.02, 0, -0.28), 0.03)],
    "left_ankle_roll_link": [("box", (0.035, 0, -0.027), (0.09, 0.03, 0.008))],
    "waist_yaw_link": [("sphere", (0, 0, 0.02), 0.05)],
    "torso_link": [("capsule", (0, 0, 0.08), (0, 0, 0.2), 0.09), ("capsule", (0, -0.1, 0.24), (0, 0.1, 0.24), 0.05)],
    "head_link": [("sphere", (0, 0, 0.47), 0.06)],
    "left_shoulder_pitch_link": [("sphere", (0, 0.03, -0.01), 0.04)],
    "left_shoulder_roll_link": [("capsule", (0, 0.005, -0.03), (0, 0.006, -0.08), 0.035)],
    "left_shoulder_yaw_link": [("capsule", (0, 0, -0.02), (0.012, 0, -0.075), 0.035)],
    "left_elbow_link": [("capsule", (0.01, 0, -0.008), (0.09, 0.002, -0.01), 0.03)],
    "left_wrist_roll_link": [("capsule", (0.0, 0, 0), (0.032, 0, 0), 0.03)],
    "left_wrist_pitch_link": [("capsule", (0.0, 0, 0), (0.04, 0, 0), 0.032)],
    "left_wrist_yaw_link": [("capsule", (0.07, 0.003, 0), (0.15, 0.003, 0), 0.035)],
}


def _mirror(geom: tuple) -> tuple:
    """The same primitive on the right side (y -> -y)."""
    def flip(p):
        return (p[0], -p[1], p[2])

    if geom[0] == "capsule":
        return ("capsule", flip(geom[1]), flip(geom[2]), geom[3])
    return (geom[0], flip(geom[1]), geom[2])


GEOMS.update({"right_" + k[5:]: [_mirror(g) for g in v] for k, v in list(GEOMS.items()) if k.startswith("left_")})
# Links whose geoms collide (forearm to hand for manipulation, the feet for standing); the rest are visual.
COLLIDING = ("elbow_link", "wrist_roll_link", "wrist_pitch_link", "wrist_yaw_link", "ankle_roll_link")


def _f(x: float) -> str:
    return f"{x:.10g}"


def _v(xs) -> str:
    return " ".join(_f(float(x)) for x in xs)


def quat_from_rpy(r: float, p: float, y: float) -> tuple[float, float, float, float]:
    """wxyz quaternion of the URDF rotation Rz(y) Ry(p) Rx(r)."""
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2),
                              math.cos(y / 2), math.sin(y / 2))
    return (cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy)


def quat_mul(a, b) -> tuple[float, float, float, float]:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


# A MuJoCo camera looks along its -z with y up; this turns a URDF camera link (x forward, z up) into one.
CAMERA_FROM_LINK = (0.5, 0.5, -0.5, -0.5)  # wxyz: camera x = -link y, camera y = link z
AXES = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}


def actuator_name(joint: str) -> str:
    return joint[: -len("_joint")]


def _children(parent: str) -> list[tuple[str, tuple | None]]:
    """(child link, joint row or None for a fixed link) in table order."""
    out: list[tuple[str, tuple | None]] = [(j[2], j) for j in JOINTS if j[1] == parent]
    out += [(name, None) for name, (p, _, _) in FIXED_LINKS.items() if p == parent]
    return out


# ----------------------------------------------------------------------------------------- MJCF


def _mj_geoms(link: str, indent: str) -> list[str]:
    cls = "collision" if link.endswith(COLLIDING) else "visual"
    rgba = "0.2 0.2 0.22 1" if any(k in link for k in ("pelvis", "ankle", "hip_pitch", "head")) else "0.75 0.75 0.77 1"
    out = []
    for g in GEOMS.get(link, []):
        if g[0] == "capsule":
            out.append(f'{indent}<geom class="{cls}" type="capsule" fromto="{_v(g[1] + g[2])}" size="{_f(g[3])}" rgba="{rgba}"/>')
        elif g[0] == "sphere":
            out.append(f'{indent}<geom class="{cls}" type="sphere" pos="{_v(g[1])}" size="{_f(g[2])}" rgba="{rgba}"/>')
        else:
            out.append(f'{indent}<geom class="{cls}" type="box" pos="{_v(g[1])}" size="{_v(g[2])}" rgba="{rgba}"/>')
    return out


def _mj_inertial(link: str) -> str:
    m, c, inertia = LINKS[link]
    return f'<inertial mass="{_f(m)}" pos="{_v(c)}" fullinertia="{_v(inertia)}"/>'


def _mj_sites(link: str, indent: str) -> list[str]:
    out = []
    for name, (parent, xyz, rpy) in FRAMES.items():
        if parent == link:
            out.append(f'{indent}<site name="{name}" pos="{_v(xyz)}" quat="{_v(quat_from_rpy(*rpy))}" size="0.01"'
                       ' rgba="1 0 0 0.4"/>')
            if name == "d435_link":  # MuJoCo cameras look along -z with y up: look along the link's x
                quat = quat_mul(quat_from_rpy(*rpy), CAMERA_FROM_LINK)
                out.append(f'{indent}<camera name="head" pos="{_v(xyz)}" quat="{_v(quat)}" fovy="58"/>')
    return out


def _mj_body(link: str, joint: tuple | None, indent: str) -> list[str]:
    if joint is None:
        _, xyz, rpy = FIXED_LINKS[link]
    else:
        xyz, rpy = joint[3], joint[4]
    lines = [f'{indent}<body name="{link}" pos="{_v(xyz)}" quat="{_v(quat_from_rpy(*rpy))}">',
             f"{indent}  {_mj_inertial(link)}"]
    if joint is not None:
        name, *_, axis, lo, hi, effort, _vel = joint
        lines.append(f'{indent}  <joint name="{name}" axis="{_v(AXES[axis])}" range="{_f(lo)} {_f(hi)}"'
                     f' armature="{_f(ARMATURE[effort])}" actuatorfrcrange="{_f(-effort)} {_f(effort)}"/>')
    lines += _mj_geoms(link, indent + "  ") + _mj_sites(link, indent + "  ")
    for child, cj in _children(link):
        lines += _mj_body(child, cj, indent + "  ")
    lines.append(f"{indent}</body>")
    return lines


def _is_leg(joint: str) -> bool:
    return any(k in joint for k in ("hip", "knee", "ankle"))


def mjcf(welded: bool) -> str:
    name = "g1_welded" if welded else "g1"
    what = (f"pelvis welded at {STAND_HEIGHT} m; motors on the waist and arms, position servos hold the legs"
            if welded else "floating base; a motor on every joint")
    lines = [
        f"<!-- Generated by scripts/gen_g1_assets.py from Unitree's g1_29dof_rev_1_0 figures ({what}). Do not edit. -->",
        f'<mujoco model="{name}">',
        '  <compiler angle="radian" autolimits="true"/>',
        '  <option timestep="0.002" integrator="implicitfast"/>',
        "  <default>",
        '    <default class="g1">',
        f'      <joint damping="{_f(JOINT_DAMPING)}"/>',
        '      <default class="visual"><geom contype="0" conaffinity="0" group="1" density="0"/></default>',
        '      <default class="collision"><geom contype="2" conaffinity="1" group="1" density="0" condim="4"'
        ' friction="1.2 0.02 0.001" solref="0.004 1"/></default>',
        "    </default>",
        "  </default>",
        "  <worldbody>",
    ]
    root = f'    <body name="pelvis" pos="0 0 {_f(STAND_HEIGHT)}" childclass="g1">'
    lines += [root, f"      {_mj_inertial('pelvis')}"]
    if not welded:
        lines.append('      <freejoint name="floating_base"/>')
    lines += _mj_geoms("pelvis", "      ") + _mj_sites("pelvis", "      ")
    for child, cj in _children("pelvis"):
        lines += _mj_body(child, cj, "      ")
    lines += ["    </body>", "  </worldbody>", "  <actuator>"]
    for j in JOINTS:
        jname, effort = j[0], j[8]
        if welded and _is_leg(jname):
            kp = LEG_SERVO_KP["ankle" if "ankle" in jname else "hip"]
            lines.append(f'    <position name="{actuator_name(jname)}" joint="{jname}" kp="{_f(kp)}" kv="{_f(LEG_SERVO_KV)}"'
                         f' forcerange="{_f(-effort)} {_f(effort)}"/>')
        else:
            lines.append(f'    <motor name="{actuator_name(jname)}" joint="{jname}" ctrlrange="{_f(-effort)} {_f(effort)}"/>')
    lines += ["  </actuator>", "</mujoco>"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- URDF


def _urdf_link(name: str) -> list[str]:
    if name not in LINKS:
        return [f'  <link name="{name}"/>']
    m, c, (ixx, iyy, izz, ixy, ixz, iyz) = LINKS[name]
    return [
        f'  <link name="{name}">',
        "    <inertial>",
        f'      <origin xyz="{_v(c)}" rpy="0 0 0"/>',
        f'      <mass value="{_f(m)}"/>',
        f'      <inertia ixx="{_f(ixx)}" ixy="{_f(ixy)}" ixz="{_f(ixz)}" iyy="{_f(iyy)}" iyz="{_f(iyz)}" izz="{_f(izz)}"/>',
        "    </inertial>",
        "  </link>",
    ]


def urdf() -> str:
    lines = [
        '<?xml version="1.0"?>',
        "<!-- Generated by scripts/gen_g1_assets.py from Unitree's g1_29dof_rev_1_0 figures (fixed base at the pelvis)."
        " Do not edit. -->",
        '<robot name="g1">',
        *_urdf_link("pelvis"),
    ]
    for name, parent, child, xyz, rpy, axis, lo, hi, effort, vel in JOINTS:
        lines += _urdf_link(child)
        lines += [
            f'  <joint name="{name}" type="revolute">',
            f'    <parent link="{parent}"/>',
            f'    <child link="{child}"/>',
            f'    <origin xyz="{_v(xyz)}" rpy="{_v(rpy)}"/>',
            f'    <axis xyz="{_v(AXES[axis])}"/>',
            f'    <limit lower="{_f(lo)}" upper="{_f(hi)}" effort="{_f(effort)}" velocity="{_f(vel)}"/>',
            "  </joint>",
        ]
    for name, (parent, xyz, rpy) in {**FIXED_LINKS, **FRAMES}.items():
        lines += _urdf_link(name)
        lines += [
            f'  <joint name="{name}_joint" type="fixed">',
            f'    <parent link="{parent}"/>',
            f'    <child link="{name}"/>',
            f'    <origin xyz="{_v(xyz)}" rpy="{_v(rpy)}"/>',
            "  </joint>",
        ]
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "g1.urdf").write_text(urdf())
    (OUT / "g1.xml").write_text(mjcf(welded=False))
    (OUT / "g1_welded.xml").write_text(mjcf(welded=True))
    print(f"wrote {OUT / 'g1.urdf'}, {OUT / 'g1.xml'} and {OUT / 'g1_welded.xml'}")
