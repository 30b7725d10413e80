"""A Gymnasium task run on a simulated cell: its scene, reset, state and success on a real-time sim arm.

The sim cell and the fast-path task share one scene and one set of task rules, so a policy trained in
the fast path runs, unchanged, on the cell:

- the arm (sim_panda) loads the task's scene and takes the task's home pose and action semantics
  (deltas, workspace box, tilt limit, binary gripper: `robo.sim.tasks.base.ACTION_LIMITS`);
- a reset asks the task for its initial state (the same seed gives the same object placement as
  `env.reset(seed=...)` in the fast path) and places it in the arm's scene;
- the observation state and the success test are the task's own code, evaluated on the arm's
  `world()` (the consistent copy of the scene the real-time loop publishes).

The task env itself is never stepped: it lends its rules, the arm's C++ loop does the physics.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco
import numpy as np

from robo.spec import ACTION, STATE, Spec


class SimTask:
    """The rules of Gymnasium task `task_id` (a robo Panda task) for a sim cell's arm."""

    def __init__(self, task_id: str) -> None:
        from robo.learn.residual_env import make_env

        self.task_id = task_id
        self.env = make_env(task_id)
        self.u: Any = self.env.unwrapped
        for hook in ("scene_xml", "home_q", "_obs", "_is_success", "robo_spec"):
            if not hasattr(self.u, hook):
                raise ValueError(f"task {task_id} is not a robo Panda task (no '{hook}'): a sim cell cannot run it")
        spec: Spec = self.u.robo_spec
        self.spec = Spec({STATE: spec[STATE], ACTION: spec[ACTION]})
        self.description: str = self.u.task_description
        self.fps = float(self.u.metadata.get("render_fps", 10))
        self.max_steps = int(getattr(self.env.spec, "max_episode_steps", None) or 100)

    def configure(self, config: Any) -> Any:
        """The sim arm's config running this task: its scene, home, rate and action rules."""
        from robo.sim.tasks.base import ACTION_LIMITS

        if getattr(config, "control_mode", "ee_delta") != "ee_delta":
            raise ValueError(f"task {self.task_id} takes ee_delta actions: the cell's arm has "
                             f"control_mode: {config.control_mode}")
        lim = ACTION_LIMITS
        return dataclasses.replace(
            config, scene=self.u.scene_xml, control_hz=self.fps, home_q=tuple(map(float, self.u.home_q)),
            max_delta_pos_m=float(lim["max_dpos"]), max_delta_rot_rad=float(lim["max_drot"]),
            workspace_low=tuple(map(float, lim["workspace_lo"])), workspace_high=tuple(map(float, lim["workspace_hi"])),
            max_tilt_rad=float(lim["max_tilt_rad"]), gripper=lim["gripper"])

    def check_arm(self, arm: Any) -> None:
        """The arm's scene must be the task's (same joints and bodies: only cameras may be added)."""
        m, t = arm.model, self.u.model
        if (m.nq, m.nv, m.nbody, m.njnt) != (t.nq, t.nv, t.nbody, t.njnt):
            raise ValueError(f"sim arm '{arm.name}': its scene ({m.nq} qpos, {m.nbody} bodies) is not the scene of "
                             f"{self.task_id} ({t.nq} qpos, {t.nbody} bodies)")
        for i in range(m.nbody):
            if m.body(i).name != t.body(i).name:
                raise ValueError(f"sim arm '{arm.name}': body {i} is '{m.body(i).name}', "
                                 f"{self.task_id} has '{t.body(i).name}'")

    def initial_qpos(self, seed: int | None) -> np.ndarray:
        """The task's initial state for `seed` (arm at home, objects placed), as the scene's qpos."""
        self.u.reset(seed=seed)
        return self.u.data.qpos.copy()

    def observe(self, world: mujoco.MjData) -> tuple[np.ndarray, bool]:
        """(observation.state (Ds,) float32, success) of the task, computed on `world`."""
        own = self.u.data
        self.u.data = world  # the task's code reads self.data; the ids match (check_arm)
        try:
            return np.asarray(self.u._obs()[STATE], np.float32), bool(self.u._is_success())
        finally:
            self.u.data = own

    def close(self) -> None:
        self.env.close()
