"""robo.sim: MuJoCo Panda tasks, the Python reference controller and scripted experts.

Importing this package registers the Gymnasium ids `PandaLift-v0`, `PandaPegInsert-v0` (project
default) and `PandaStack-v0`; `gymnasium.make(id, cameras=(), image_size=64, controller="auto")`.
Tasks of other packages (entry points, `package.module:Id`) and every task's scripted expert are found
by `robo.sim.registry`; their scenes may include robo's Panda, table and cameras by name
(`robo.sim.scenes`).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede the first mujoco import

import gymnasium as gym  # noqa: E402

# id -> (entry point, max_episode_steps at 10 Hz)
TASKS: dict[str, tuple[str, int]] = {
    "PandaPegInsert-v0": ("robo.sim.tasks.peg_insert_v0:PegInsertV0", 100),
    "PandaLift-v0": ("robo.sim.tasks.lift_v0:LiftV0", 50),
    "PandaStack-v0": ("robo.sim.tasks.stack_v0:StackV0", 80),
}
DEFAULT_TASK = "PandaPegInsert-v0"

for _id, (_entry, _steps) in TASKS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry, max_episode_steps=_steps)
