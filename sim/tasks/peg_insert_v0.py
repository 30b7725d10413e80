"""PandaPegInsert-v0: pick a square peg off the table and insert it into a square hole.

Scene `assets/peg_insert_scene.xml`: peg 2.4 x 2.4 x 8 cm, 50 g; fixture with a 2.7 cm square
through-hole (3 mm total clearance), 4 cm tall, its walls 2 cm thick. Reset: peg upright at
x in [0.42, 0.58], y in [-0.18, -0.06] m with yaw in [-0.35, 0.35] rad; fixture at x in [0.42, 0.58],
y in [0.06, 0.18] m (yaw 0). TCP starts at (0.5, 0, 0.2) pointing down, gripper open.

Success: the peg's bottom face is at least 2.5 cm below the fixture's top face (of 4 cm) and the peg
centre is within 1 cm of the hole axis. Time limit 100 steps (10 s); the scripted expert takes ~40
steps at noise 0.

observation.state (20,): tcp position (3), tcp 6-D rotation (6), gripper width, peg position (3),
peg yaw as (cos 4 yaw, sin 4 yaw) (2), hole top centre x/y (2), hole - peg bottom centre (3).

Version History
---------------
* v0: initial version.
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from robo.sim.tasks.base import PandaTaskEnv, vec_names, yaw4, yaw4_names, yaw_quat

PEG_HALF = np.array([0.012, 0.012, 0.04])  # m
FIXTURE_HEIGHT = 0.04  # m
SUCCESS_DEPTH = 0.025  # m of peg below the fixture top
SUCCESS_XY = 0.01  # m
PEG_X, PEG_Y, PEG_YAW = (0.42, 0.58), (-0.18, -0.06), (-0.35, 0.35)
HOLE_X, HOLE_Y = (0.42, 0.58), (0.06, 0.18)


class PegInsertV0(PandaTaskEnv):
    scene_xml: ClassVar[str] = "peg_insert_scene.xml"
    scripted_expert: ClassVar[str] = "robo.sim.experts:PegInsertExpert"
    task_description: ClassVar[str] = "insert the peg into the hole"
    object_names: ClassVar[tuple[str, ...]] = (
        *vec_names("peg"), *yaw4_names("peg"), "hole_x", "hole_y", *vec_names("peg_bottom_to_hole"),
    )

    def _setup(self) -> None:
        m = self.model
        self._peg = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "peg")
        self._peg_q = int(m.jnt_qposadr[m.body_jntadr[self._peg]])
        fixture = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "fixture")
        self._mocap = int(m.body_mocapid[fixture])
        self._hole_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "hole")

    def _reset_objects(self, rng: np.random.Generator) -> None:
        d = self.data
        x, y, yaw = rng.uniform(*PEG_X), rng.uniform(*PEG_Y), rng.uniform(*PEG_YAW)
        d.qpos[self._peg_q:self._peg_q + 3] = (x, y, PEG_HALF[2])
        d.qpos[self._peg_q + 3:self._peg_q + 7] = yaw_quat(yaw)
        d.mocap_pos[self._mocap] = (rng.uniform(*HOLE_X), rng.uniform(*HOLE_Y), 0.0)
        d.mocap_quat[self._mocap] = (1.0, 0.0, 0.0, 0.0)

    # privileged accessors used by the expert and the success test
    @property
    def peg_pos(self) -> np.ndarray:
        return self.data.xpos[self._peg].copy()

    @property
    def peg_mat(self) -> np.ndarray:
        return self.data.xmat[self._peg].reshape(3, 3).copy()

    @property
    def hole_pos(self) -> np.ndarray:
        """Centre of the hole's top opening, m."""
        return self.data.site_xpos[self._hole_site].copy()

    def peg_bottom(self) -> np.ndarray:
        return self.peg_pos - self.peg_mat[:, 2] * PEG_HALF[2]

    def _object_state(self) -> np.ndarray:
        hole = self.hole_pos
        return np.concatenate([self.peg_pos, yaw4(self.peg_mat), hole[:2], hole - self.peg_bottom()])

    def _is_success(self) -> bool:
        hole, peg = self.hole_pos, self.peg_pos
        depth = hole[2] - self.peg_bottom()[2]
        return bool(depth >= SUCCESS_DEPTH and np.linalg.norm(peg[:2] - hole[:2]) < SUCCESS_XY)
