"""Generate sim/assets/panda.xml (MJCF) and sim/assets/panda.urdf from one table of published figures.

Kinematics: Franka Emika Panda modified-DH table (Franka Control Interface documentation,
"Robot and interface specifications"). Joint position/velocity/torque limits: same document.
Inertial parameters: the dynamic identification of Gaz et al., "Dynamic Identification of the Franka
Emika Panda Robot With Retrieval of Feasible Parameters Using Penalty-Based Optimization" (RA-L 2019),
as also used by the MuJoCo Menagerie Panda model.

Geometry is primitive (capsules/boxes) so CPU rendering stays fast. Both files come from the same
numbers, so forward kinematics agree exactly (tests/sim/test_panda_model.py checks it).

    python scripts/gen_panda_assets.py
"""

from __future__ import annotations

import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "sim" / "assets"

# (a [m], d [m], alpha [rad]) per joint, modified DH: T = RotX(alpha) TransX(a) TransZ(d) RotZ(q).
DH = [
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
]
FLANGE_D = 0.107  # m, link7 -> flange along z
HAND_YAW = -math.pi / 4  # rad, hand is mounted rotated about the flange z axis
FINGER_Z = 0.0584  # m, hand -> finger joint origin
TCP_Z = 0.1034  # m, hand -> tool centre point between the fingertips

Q_MIN = [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]  # rad
Q_MAX = [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]  # rad
DQ_MAX = [2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100]  # rad/s
TAU_MAX = [87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]  # N m
FINGER_MAX = 0.04  # m, per finger
FINGER_FORCE = 70.0  # N, continuous grasp force of the Franka Hand

# mass [kg], centre of mass [m], inertia about the COM (ixx, iyy, izz, ixy, ixz, iyz) [kg m^2]
INERTIA = {
    "link0": (0.629769, (-0.041018, -0.00014, 0.049974), (0.00315, 0.00388, 0.004285, 8.2904e-7, 0.00015, 8.2299e-6)),
    "link1": (4.970684, (0.003875, 0.002081, -0.04762), (0.70337, 0.70661, 0.009117, -0.000139, 0.006772, 0.019169)),
    "link2": (0.646926, (-0.003141, -0.02872, 0.003495), (0.007962, 0.02811, 0.025995, -0.003925, 0.010254, 0.000704)),
    "link3": (3.228604, (0.027518, 0.039252, -0.066502), (0.037242, 0.036155, 0.01083, -0.004761, -0.011396, -0.012805)),
    "link4": (3.587895, (-0.05317, 0.104419, 0.027454), (0.025853, 0.019552, 0.028323, 0.007796, -0.001332, 0.008641)),
    "link5": (1.225946, (-0.011953, 0.041065, -0.038437), (0.035549, 0.029474, 0.008627, -0.002117, -0.004037, 0.000229)),
    "link6": (1.666555, (0.060149, -0.014117, -0.010517), (0.001964, 0.004354, 0.005433, 0.000109, -0.001158, 0.000341)),
    "link7": (0.735522, (0.010517, -0.004252, 0.061597), (0.012516, 0.010027, 0.004815, -0.000428, -0.001196, -0.000741)),
    "hand": (0.73, (-0.01, 0.0, 0.03), (0.001, 0.0025, 0.0017, 0.0, 0.0, 0.0)),
    "left_finger": (0.015, (0.0, 0.0, 0.0), (2.375e-6, 2.375e-6, 7.5e-7, 0.0, 0.0, 0.0)),
    "right_finger": (0.015, (0.0, 0.0, 0.0), (2.375e-6, 2.375e-6, 7.5e-7, 0.0, 0.0, 0.0)),
}

# Visual/collision capsules per link, in the link frame: (from xyz, to xyz, radius) [m]
CAPSULES = {
    "link0": [((0, 0, 0.03), (0, 0, 0.14), 0.06)],
    "link1": [((0, 0, -0.19), (0, 0, -0.02), 0.06)],
    "link2": [((0, 0, -0.06), (0, 0, 0.06), 0.06), ((0, -0.02, 0), (0, -0.16, 0), 0.055)],
    "link3": [((0, 0, -0.15), (0, 0, -0.03), 0.055), ((0.04, 0, 0), (0.08, 0, 0), 0.05)],
    "link4": [((0, 0, -0.05), (0, 0, 0.05), 0.055), ((-0.02, 0.02, 0), (-0.08, 0.1, 0), 0.05)],
    "link5": [((0, 0, -0.26), (0, 0, -0.04), 0.05), ((0, 0.08, -0.02), (0, 0.08, -0.1), 0.025)],
    "link6": [((0, 0, -0.04), (0, 0, 0.02), 0.05), ((0.02, 0, 0), (0.08, 0, 0), 0.04)],
    "link7": [((0, 0, -0.01), (0, 0, 0.08), 0.045)],
}


def _rgba(i: int) -> str:
    return "0.95 0.95 0.95 1" if i % 2 == 0 else "0.25 0.25 0.28 1"


def _f(x: float) -> str:
    return f"{x:.10g}"


def _v(xs) -> str:
    return " ".join(_f(x) for x in xs)


def _quat_x(alpha: float) -> tuple[float, ...]:
    return (math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0)


def _quat_z(yaw: float) -> tuple[float, ...]:
    return (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))


def _dh_pos(a: float, d: float, alpha: float) -> tuple[float, float, float]:
    return (a, -d * math.sin(alpha), d * math.cos(alpha))


# ----------------------------------------------------------------------------------------- MJCF


def _mj_inertial(name: str) -> str:
    m, c, (ixx, iyy, izz, ixy, ixz, iyz) = INERTIA[name]
    return f'<inertial mass="{_f(m)}" pos="{_v(c)}" fullinertia="{_v((ixx, iyy, izz, ixy, ixz, iyz))}"/>'


def _mj_capsules(name: str, i: int) -> list[str]:
    return [
        f'<geom class="link" fromto="{_v(a + b)}" size="{_f(r)}" rgba="{_rgba(i)}"/>'
        for a, b, r in CAPSULES.get(name, [])
    ]


def mjcf() -> str:
    lines = [
        "<!-- Generated by scripts/gen_panda_assets.py from published Franka Panda figures. Do not edit. -->",
        '<mujoco model="panda">',
        '  <compiler angle="radian" autolimits="true"/>',
        "  <default>",
        '    <default class="panda">',
        '      <joint armature="0.1" damping="1.0"/>',
        '      <default class="link"><geom type="capsule" contype="0" conaffinity="0" group="1"/></default>',
        '      <default class="finger">',
        '        <joint type="slide" armature="0.01" damping="10"/>',
        '        <geom type="box" friction="1.5 0.01 0.001" condim="4" solref="0.005 1" solimp="0.95 0.99 0.001"'
        ' priority="1" rgba="0.2 0.2 0.22 1"/>',
        "      </default>",
        "    </default>",
        "  </default>",
        "  <worldbody>",
        '    <body name="link0" childclass="panda">',
        "      " + _mj_inertial("link0"),
        *["      " + g for g in _mj_capsules("link0", 0)],
    ]
    indent = "      "
    for i, (a, d, alpha) in enumerate(DH, start=1):
        name = f"link{i}"
        lines.append(f'{indent}<body name="{name}" pos="{_v(_dh_pos(a, d, alpha))}" quat="{_v(_quat_x(alpha))}">')
        indent += "  "
        lines.append(f"{indent}{_mj_inertial(name)}")
        lines.append(
            f'{indent}<joint name="joint{i}" axis="0 0 1" range="{_f(Q_MIN[i - 1])} {_f(Q_MAX[i - 1])}"/>'
        )
        lines += [indent + g for g in _mj_capsules(name, i)]
    # hand, fingers, tcp
    lines += [
        f'{indent}<body name="hand" pos="0 0 {_f(FLANGE_D)}" quat="{_v(_quat_z(HAND_YAW))}">',
        f"{indent}  {_mj_inertial('hand')}",
        f'{indent}  <geom class="link" fromto="0 -0.09 0.03 0 0.09 0.03" size="0.03" rgba="0.95 0.95 0.95 1"/>',
        f'{indent}  <geom class="link" fromto="0 0 0 0 0 0.03" size="0.035" rgba="0.95 0.95 0.95 1"/>',
        f'{indent}  <site name="tcp" pos="0 0 {_f(TCP_Z)}" size="0.005" rgba="1 0 0 0.5"/>',
        f'{indent}  <body name="left_finger" pos="0 0 {_f(FINGER_Z)}">',
        f"{indent}    {_mj_inertial('left_finger')}",
        f'{indent}    <joint name="finger_joint1" class="finger" axis="0 1 0" range="0 {_f(FINGER_MAX)}"/>',
        f'{indent}    <geom class="finger" size="0.011 0.006 0.027" pos="0 0.006 0.027"/>',
        f"{indent}  </body>",
        f'{indent}  <body name="right_finger" pos="0 0 {_f(FINGER_Z)}">',
        f"{indent}    {_mj_inertial('right_finger')}",
        f'{indent}    <joint name="finger_joint2" class="finger" axis="0 -1 0" range="0 {_f(FINGER_MAX)}"/>',
        f'{indent}    <geom class="finger" size="0.011 0.006 0.027" pos="0 -0.006 0.027"/>',
        f"{indent}  </body>",
        f"{indent}</body>",
    ]
    for _ in DH:
        indent = indent[:-2]
        lines.append(f"{indent}</body>")
    lines += [
        "    </body>",
        "  </worldbody>",
        "  <tendon>",
        '    <fixed name="split"><joint joint="finger_joint1" coef="0.5"/><joint joint="finger_joint2" coef="0.5"/>'
        "</fixed>",
        "  </tendon>",
        "  <equality>",
        '    <joint joint1="finger_joint1" joint2="finger_joint2" solref="0.005 1" solimp="0.95 0.99 0.001"/>',
        "  </equality>",
        "  <actuator>",
        *[
            f'    <motor name="actuator{i}" joint="joint{i}" ctrlrange="{_f(-t)} {_f(t)}"/>'
            for i, t in enumerate(TAU_MAX, start=1)
        ],
        f'    <motor name="actuator_gripper" tendon="split" ctrlrange="{_f(-FINGER_FORCE)} {_f(FINGER_FORCE)}"/>',
        "  </actuator>",
        "</mujoco>",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- URDF


def _urdf_link(name: str) -> list[str]:
    m, c, (ixx, iyy, izz, ixy, ixz, iyz) = INERTIA[name]
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
        "<!-- Generated by scripts/gen_panda_assets.py from published Franka Panda figures. Do not edit. -->",
        '<robot name="panda">',
        *_urdf_link("link0"),
    ]
    for i, (a, d, alpha) in enumerate(DH, start=1):
        lines += _urdf_link(f"link{i}")
        lines += [
            f'  <joint name="joint{i}" type="revolute">',
            f'    <parent link="link{i - 1}"/>',
            f'    <child link="link{i}"/>',
            f'    <origin xyz="{_v(_dh_pos(a, d, alpha))}" rpy="{_f(alpha)} 0 0"/>',
            '    <axis xyz="0 0 1"/>',
            f'    <limit lower="{_f(Q_MIN[i - 1])}" upper="{_f(Q_MAX[i - 1])}" effort="{_f(TAU_MAX[i - 1])}"'
            f' velocity="{_f(DQ_MAX[i - 1])}"/>',
            "  </joint>",
        ]
    lines += _urdf_link("hand")
    lines += [
        '  <joint name="hand_joint" type="fixed">',
        '    <parent link="link7"/>',
        '    <child link="hand"/>',
        f'    <origin xyz="0 0 {_f(FLANGE_D)}" rpy="0 0 {_f(HAND_YAW)}"/>',
        "  </joint>",
        '  <link name="tcp"/>',
        '  <joint name="tcp_joint" type="fixed">',
        '    <parent link="hand"/>',
        '    <child link="tcp"/>',
        f'    <origin xyz="0 0 {_f(TCP_Z)}" rpy="0 0 0"/>',
        "  </joint>",
    ]
    for j, (name, sign) in enumerate((("left_finger", 1), ("right_finger", -1)), start=1):
        lines += _urdf_link(name)
        lines += [
            f'  <joint name="finger_joint{j}" type="prismatic">',
            '    <parent link="hand"/>',
            f'    <child link="{name}"/>',
            f'    <origin xyz="0 0 {_f(FINGER_Z)}" rpy="0 0 0"/>',
            f'    <axis xyz="0 {sign} 0"/>',
            f'    <limit lower="0" upper="{_f(FINGER_MAX)}" effort="{_f(FINGER_FORCE)}" velocity="0.2"/>',
            "  </joint>",
        ]
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "panda.xml").write_text(mjcf())
    (OUT / "panda.urdf").write_text(urdf())
    print(f"wrote {OUT / 'panda.xml'} and {OUT / 'panda.urdf'}")
