"""robo.sim: MuJoCo Panda tasks, the Python reference controller and scripted experts.

Importing this package registers the Gymnasium ids `PandaLift-v0`, `PandaPegInsert-v0` (project
default), `PandaStack-v0` and `G1BoxLift-v0` (Unitree G1, both hands);
`gymnasium.make(id, cameras=(), image_size=64, controller="auto")`.
Tasks of other packages (entry points, `package.module:Id`) and every task's scripted expert are found
by `robo.sim.registry`; their scenes may include robo's Panda, table and cameras by name
(`robo.sim.scenes`).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede the first mujoco import

import gymnasium as gym  # noqa: E402

# id -> (entry point, max_episode_steps)
TASKS: dict[str, tuple[str, int]] = {
    "PandaPegInsert-v0": ("robo.sim.tasks.peg_insert_v0:PegInsertV0", 100),
    "PandaLift-v0": ("robo.sim.tasks.lift_v0:LiftV0", 50),
    "PandaStack-v0": ("robo.sim.tasks.stack_v0:StackV0", 80),
    # 20 Hz: max_episode_steps counts policy steps of the task's own rate (5 s here)
    "G1BoxLift-v0": ("robo.sim.tasks.g1_box_lift_v0:G1BoxLiftV0", 100),
}
DEFAULT_TASK = "PandaPegInsert-v0"

for _id, (_entry, _steps) in TASKS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry, max_episode_steps=_steps)
