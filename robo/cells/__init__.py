"""Robot cells as environments: run, evaluate and fine-tune policies on a cell through the HAL.

    from robo.cells import CellEnv
    env = CellEnv("configs/cells/sim_panda.yaml", task="PandaLift-v0")

`CellEnv` (env.py) is registered as the Gymnasium id `robo/Cell-v0`; `SimTask` (sim_task.py) lends a
task's rules to a sim cell; `Operator` (operator.py) carries a person's go / success / pause / stop.
`robo run`, `robo eval --cell`, `robo train --residual --cell` and `robo actor --cell` use them.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # sim cameras render headless; must precede the first mujoco import

import gymnasium as gym  # noqa: E402

from robo.cells.env import CellEnv, CellLog, UnsafeActionError, cell_env_fn  # noqa: E402
from robo.cells.operator import Operator, OperatorStop  # noqa: E402

CELL_ENV_ID = "robo/Cell-v0"
if CELL_ENV_ID not in gym.registry:
    gym.register(CELL_ENV_ID, entry_point="robo.cells.env:CellEnv", disable_env_checker=True)

__all__ = ["CELL_ENV_ID", "CellEnv", "CellLog", "Operator", "OperatorStop", "UnsafeActionError", "cell_env_fn"]
