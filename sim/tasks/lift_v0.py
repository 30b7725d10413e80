"""PandaLift-v0: grasp a cube and lift it 10 cm.

Scene `assets/lift_scene.xml`: one 4 cm cube, 50 g. Reset: cube at x in [0.42, 0.58], y in
[-0.12, 0.12] m, yaw in [-pi/4, pi/4]. TCP starts at (0.5, 0, 0.2) pointing down, gripper open.
Success: cube centre at least 10 cm above its resting height (z >= 0.12 m). Time limit 50 steps (5 s);
the scripted expert takes ~20.

observation.state (18,): tcp position (3), tcp 6-D rotation (6), gripper width, cube position (3),
cube yaw as (cos 4 yaw, sin 4 yaw) (2), cube - tcp (3).

Version History
---------------
* v0: initial version.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from robo.sim.tasks.base import PandaTaskEnv, vec_names, yaw4, yaw4_names, yaw_quat

CUBE_HALF = 0.02  # m
LIFT_HEIGHT = 0.10  # m
CUBE_X, CUBE_Y, CUBE_YAW = (0.42, 0.58), (-0.12, 0.12), (-math.pi / 4, math.pi / 4)


class LiftV0(PandaTaskEnv):
    scene_xml: ClassVar[str] = "lift_scene.xml"
    scripted_expert: ClassVar[str] = "robo.sim.experts:LiftExpert"
    task_description: ClassVar[str] = "lift the cube"
    object_names: ClassVar[tuple[str, ...]] = (*vec_names("cube"), *yaw4_names("cube"), *vec_names("tcp_to_cube"))

    def _setup(self) -> None:
        self._cube, self._cube_q = self.free_body("cube")

    def _reset_objects(self, rng: np.random.Generator) -> None:
        q = self._cube_q
        self.data.qpos[q:q + 3] = (rng.uniform(*CUBE_X), rng.uniform(*CUBE_Y), CUBE_HALF)
        self.data.qpos[q + 3:q + 7] = yaw_quat(rng.uniform(*CUBE_YAW))

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.xpos[self._cube].copy()

    @property
    def cube_mat(self) -> np.ndarray:
        return self.data.xmat[self._cube].reshape(3, 3).copy()

    def _object_state(self) -> np.ndarray:
        cube = self.cube_pos
        return np.concatenate([cube, yaw4(self.cube_mat), cube - self.tcp_pos])

    def _is_success(self) -> bool:
        return bool(self.cube_pos[2] >= CUBE_HALF + LIFT_HEIGHT)
