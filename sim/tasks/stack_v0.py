"""PandaStack-v0: pick cube A and place it on cube B (multi-stage: reach, grasp, carry, place, release).

Scene `assets/stack_scene.xml`: cubes A (red) and B (green), 4 cm, 50 g each. Reset: both at
x in [0.42, 0.58], y in [-0.15, 0.15] m, at least 10 cm apart, yaw in [-pi/4, pi/4].
TCP starts at (0.5, 0, 0.2) pointing down, gripper open.

Success: A rests on B (A's centre within 1.5 cm of B's axis in x/y and 3.5-4.5 cm above B's centre) and
no finger touches A (released). Time limit 80 steps (8 s); the scripted expert takes ~40.

observation.state (26,): tcp position (3), tcp 6-D rotation (6), gripper width, A position (3), A yaw as
(cos 4 yaw, sin 4 yaw) (2), B position (3), B yaw (2), A - tcp (3), B - A (3).

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
CUBE_X, CUBE_Y, CUBE_YAW = (0.42, 0.58), (-0.15, 0.15), (-math.pi / 4, math.pi / 4)
MIN_SEPARATION = 0.10  # m between the cube centres at reset
STACK_XY, STACK_DZ = 0.015, (0.035, 0.045)  # m


class StackV0(PandaTaskEnv):
    scene_xml: ClassVar[str] = "stack_scene.xml"
    scripted_expert: ClassVar[str] = "robo.sim.experts:StackExpert"
    task_description: ClassVar[str] = "stack the red cube on the green cube"
    object_names: ClassVar[tuple[str, ...]] = (
        *vec_names("cube_a"), *yaw4_names("cube_a"), *vec_names("cube_b"), *yaw4_names("cube_b"),
        *vec_names("tcp_to_cube_a"), *vec_names("cube_a_to_cube_b"),
    )

    def _setup(self) -> None:
        self._a, self._a_q = self.free_body("cube_a")
        self._b, self._b_q = self.free_body("cube_b")
        self._a_geoms = {g for g in range(self.model.ngeom) if int(self.model.geom_bodyid[g]) == self._a}

    def _reset_objects(self, rng: np.random.Generator) -> None:
        while True:
            a = np.array([rng.uniform(*CUBE_X), rng.uniform(*CUBE_Y)])
            b = np.array([rng.uniform(*CUBE_X), rng.uniform(*CUBE_Y)])
            if np.linalg.norm(a - b) >= MIN_SEPARATION:
                break
        for q, xy in ((self._a_q, a), (self._b_q, b)):
            self.data.qpos[q:q + 3] = (xy[0], xy[1], CUBE_HALF)
            self.data.qpos[q + 3:q + 7] = yaw_quat(rng.uniform(*CUBE_YAW))

    @property
    def cube_a_pos(self) -> np.ndarray:
        return self.data.xpos[self._a].copy()

    @property
    def cube_a_mat(self) -> np.ndarray:
        return self.data.xmat[self._a].reshape(3, 3).copy()

    @property
    def cube_b_pos(self) -> np.ndarray:
        return self.data.xpos[self._b].copy()

    @property
    def cube_b_mat(self) -> np.ndarray:
        return self.data.xmat[self._b].reshape(3, 3).copy()

    def _object_state(self) -> np.ndarray:
        a, b = self.cube_a_pos, self.cube_b_pos
        return np.concatenate([a, yaw4(self.cube_a_mat), b, yaw4(self.cube_b_mat), a - self.tcp_pos, b - a])

    def _is_success(self) -> bool:
        a, b = self.cube_a_pos, self.cube_b_pos
        dz = a[2] - b[2]
        on_top = np.linalg.norm(a[:2] - b[:2]) < STACK_XY and STACK_DZ[0] <= dz <= STACK_DZ[1]
        return bool(on_top and not self._touching(self._a_geoms, self.finger_geoms))
