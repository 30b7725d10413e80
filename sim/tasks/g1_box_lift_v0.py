"""G1BoxLift-v0: a Unitree G1, pelvis welded at standing height, lifts a box with both hands.

Scene `assets/g1_box_lift_scene.xml`: the G1 of g1_welded.xml (position servos hold the legs, as the
robot's balance controller would; the waist and both arms are driven by the C++ controller on PD
drives, the same code and command form as through `rt/arm_sdk`), a table (top at z = 0.78 m) and a
0.16 x 0.24 x 0.16 m box of 0.3 kg. The rubber hands cannot grasp: they squeeze the box from its sides.

Each env step (20 Hz): both hand targets := clip(target + delta) (per-hand boxes, hands never
crossing), then, when `squeeze > 0`, both are moved SQUEEZE_DEPTH (0.04 m) inward along the line
between them (the hands press into the box, as a gripper closing on an object) -- `robo.sim.g1.HandTargets`,
shared with the sim_g1 and unitree_g1 drivers -- then `ctrl.set_ee_targets` (pelvis frame) and
`ctrl.step(25)` (0.002 s physics). Hand orientations stay at their home orientation.

Action (7,) float32: [left dx, dy, dz, right dx, dy, dz] m (world frame, at most +-0.02 m per step),
squeeze in [-1, 1] (> 0 presses the hands together).
Reset: box centre at x in [0.27, 0.33], y in [-0.03, 0.03] m, yaw in [-0.15, 0.15] rad; hands at
(0.25, +-0.25, 0.95) m, pointing forward. Success: box centre at least 0.10 m above its resting height.
Time limit 100 steps (5 s); the scripted expert takes ~45.

observation.state (18,): left palm position (3), right palm position (3), distance between the palms,
box position (3), box yaw as (cos 2 yaw, sin 2 yaw) (2; the box looks the same turned by half a turn),
box - left palm (3), box - right palm (3). World frame, m.

Version History
---------------
* v0: initial version.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import mujoco
import numpy as np

from robo.sim import g1
from robo.sim.tasks.base import SceneTaskEnv, vec_names, yaw_quat

POLICY_HZ = 20.0
N_SUBSTEPS = 25  # physics ticks per policy step: 0.002 s x 25 = 0.05 s (20 Hz)
MAX_DPOS = 0.02  # m per step and axis
SQUEEZE_DEPTH = g1.SQUEEZE_DEPTH
MIN_GAP = g1.MIN_HAND_GAP
BOX_HALF = np.array([0.08, 0.12, 0.08])  # m
LIFT_HEIGHT = 0.10  # m
BOX_X, BOX_Y, BOX_YAW = (0.27, 0.33), (-0.03, 0.03), (-0.15, 0.15)
HOME_LEFT, HOME_RIGHT = np.array([0.25, 0.25, 0.95]), np.array([0.25, -0.25, 0.95])

_HOME_Q: dict[Path, np.ndarray] = {}  # scene file -> home posture (IK solved once)


class G1BoxLiftV0(SceneTaskEnv):
    """G1 upper body + table + box; bimanual end-effector deltas at 20 Hz."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
    scene_xml: ClassVar[str] = "g1_box_lift_scene.xml"
    task_description: ClassVar[str] = "lift the box with both hands"
    robot_type: ClassVar[str] = "unitree_g1"
    scripted_expert: ClassVar[str] = "robo.sim.g1_expert:G1BoxLiftExpert"

    def __init__(
        self,
        cameras: tuple[str, ...] | list[str] = (),
        image_size: int = 64,
        controller: str = "auto",
        render_mode: str | None = None,
    ) -> None:
        if controller not in ("auto", "cpp"):  # the G1 has one controller, the C++ one (no Python twin)
            raise ValueError(f"controller must be 'auto' or 'cpp' (the G1 runs on the C++ controller), "
                             f"got {controller!r}")
        self._open_scene(cameras, image_size, render_mode)

        m = self.model
        # The one controller of the G1 (C++, PD drives) -- there is no Python twin of it.
        self.body = g1.UpperBodySim(m, self.data, POLICY_HZ)
        self.ctrl = self.body.ctrl
        self._box = m.body("box").id
        self._box_q = int(m.jnt_qposadr[m.body_jntadr[self._box]])
        self.home_q = self._home_q()
        self.pelvis_pos = self.body.pelvis_pos

        self._make_spaces(
            (*vec_names("left_palm"), *vec_names("right_palm"), "palm_gap", *vec_names("box"), "box_yaw2_cos",
             "box_yaw2_sin", *vec_names("left_palm_to_box"), *vec_names("right_palm_to_box")),
            "m; yaw terms unitless", np.array([-MAX_DPOS] * 6 + [-1.0], dtype=np.float32),
            ("left_dx", "left_dy", "left_dz", "right_dx", "right_dy", "right_dz", "squeeze"),
            "m (left/right dx..dz, world frame), 1 (squeeze: > 0 presses the hands together)")
        self.n_steps = 0
        self.rest_z = 0.78 + BOX_HALF[2]

    # ------------------------------------------------------------------ gym API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self.body.place(self.home_q)
        rng = self.np_random
        q = self._box_q
        d.qpos[q:q + 3] = (rng.uniform(*BOX_X), rng.uniform(*BOX_Y), 0.78 + BOX_HALF[2])
        d.qpos[q + 3:q + 7] = yaw_quat(rng.uniform(*BOX_YAW))
        self.body.reset()
        self.rest_z = float(d.qpos[q + 2])
        self.n_steps = 0
        return self._obs(), {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(7)
        a = np.where(np.isfinite(a), a, 0.0)  # a NaN action component means "no change"
        a = np.clip(a, self.action_space.low, self.action_space.high)
        self.body.apply_ee_action(a)
        self.ctrl.step(N_SUBSTEPS)
        self.n_steps += 1
        success = self._is_success()
        return self._obs(), float(success), success, False, {"success": success}

    # ------------------------------------------------------------------ state

    @property
    def palm_pos(self) -> np.ndarray:
        """(2, 3) measured palm positions (left, right), world, m (a copy)."""
        return self.body.palm_pos()

    @property
    def n_rejected(self) -> int:
        """Hand targets the controller refused (outside its workspace box)."""
        return self.body.n_rejected

    @property
    def box_pos(self) -> np.ndarray:
        return self.data.xpos[self._box].copy()

    @property
    def box_yaw(self) -> float:
        mat = self.data.xmat[self._box].reshape(3, 3)
        return math.atan2(mat[1, 0], mat[0, 0])

    @property
    def target_pos(self) -> np.ndarray:
        """(2, 3) commanded hand positions (left, right), world, m (a copy)."""
        return self.body.hands.pos + self.pelvis_pos

    @property
    def squeezing(self) -> bool:
        return self.body.hands.squeezing

    def commanded_targets(self) -> np.ndarray:
        """(2, 3) hand targets sent to the controller, world: the commanded ones, pressed inward while
        squeezing."""
        return self.body.hands.sent() + self.pelvis_pos

    def _is_success(self) -> bool:
        return bool(self.data.xpos[self._box][2] >= self.rest_z + LIFT_HEIGHT)

    def _obs(self) -> dict[str, np.ndarray]:
        palms, box = self.palm_pos, self.box_pos
        yaw = self.box_yaw
        return self._with_images(np.concatenate([
            palms[0], palms[1], [np.linalg.norm(palms[0] - palms[1])], box, [math.cos(2 * yaw), math.sin(2 * yaw)],
            box - palms[0], box - palms[1],
        ]))

    def _home_q(self) -> np.ndarray:
        if self.scene_path not in _HOME_Q:
            _HOME_Q[self.scene_path] = g1.solve_hands_ik(self.model, self.body.qadr, self.body.palm_sites,
                                                        (HOME_LEFT, HOME_RIGHT))
        return _HOME_Q[self.scene_path].copy()
