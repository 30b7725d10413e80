"""ExampleTasks/PandaReach-v0: bring the TCP within 2 cm of a point that changes every episode.

Scene `reach_scene.xml` (beside this file): robo's Panda, physics, table and cameras, included by
name, and a green marker (no collision) at the goal. observation.state (16,): robo's TCP pose and
gripper width (10), then the goal (3) and goal - TCP (3). Success: |TCP - goal| < 2 cm.
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from robo.sim.experts import MAX_STEP, OPEN, WaypointExpert
from robo.sim.tasks.base import PandaTaskEnv, vec_names

GOAL_LO, GOAL_HI = np.array([0.40, -0.15, 0.05]), np.array([0.60, 0.15, 0.15])  # m
TOLERANCE = 0.02  # m


class ReachV0(PandaTaskEnv):
    scene_xml: ClassVar[str] = "reach_scene.xml"
    task_description: ClassVar[str] = "reach the green marker"
    scripted_expert: ClassVar[str] = "example_tasks.reach:ReachExpert"
    object_names: ClassVar[tuple[str, ...]] = (*vec_names("goal"), *vec_names("tcp_to_goal"))

    def _setup(self) -> None:
        self._goal = int(self.model.body_mocapid[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "goal")])

    def _reset_objects(self, rng: np.random.Generator) -> None:
        self.data.mocap_pos[self._goal] = rng.uniform(GOAL_LO, GOAL_HI)

    @property
    def goal_pos(self) -> np.ndarray:
        return self.data.mocap_pos[self._goal].copy()

    def _object_state(self) -> np.ndarray:
        return np.concatenate([self.goal_pos, self.goal_pos - self.tcp_pos])

    def _is_success(self) -> bool:
        return bool(np.linalg.norm(self.goal_pos - self.tcp_pos) < TOLERANCE)


class ReachExpert(WaypointExpert):
    """Straight to the goal, gripper open."""

    def _plan(self) -> tuple[np.ndarray, float, float, float]:
        return self.u.goal_pos, self._tcp_yaw(), OPEN, MAX_STEP
