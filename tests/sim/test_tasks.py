"""Each Panda task against the shared task contract (tests/contracts/test_task.py), plus task specifics."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

import robo.sim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contracts"))
from test_task import TaskContract  # noqa: E402


class TestPegInsert(TaskContract):
    env_id = "PandaPegInsert-v0"


class TestLift(TaskContract):
    env_id = "PandaLift-v0"


class TestStack(TaskContract):
    env_id = "PandaStack-v0"


# The package build always compiles robo.drivers.rt: a missing extension is a failure, not a skip.
class TestPegInsertCpp(TaskContract):
    env_id = "PandaPegInsert-v0"
    controller = "cpp"


def test_all_ids_registered_on_import():
    assert robo.sim.DEFAULT_TASK == "PandaPegInsert-v0"
    for env_id in ("PandaLift-v0", "PandaPegInsert-v0", "PandaStack-v0"):
        assert env_id in gym.registry and gym.registry[env_id].max_episode_steps


def test_peg_success_when_peg_is_placed_in_the_hole():
    env = gym.make("PandaPegInsert-v0", controller="python")
    env.reset(seed=0)
    u = env.unwrapped
    assert not u._is_success()
    hole = u.hole_pos
    q = u._peg_q
    u.data.qpos[q:q + 3] = (hole[0], hole[1], 0.04)  # resting on the table inside the hole
    u.data.qvel[:] = 0.0
    mujoco.mj_forward(u.model, u.data)
    assert u._is_success()
    u.data.qpos[q:q + 3] = (hole[0], hole[1], 0.04 + 0.02)  # only 2 cm deep: not yet
    mujoco.mj_forward(u.model, u.data)
    assert not u._is_success()


def test_resets_randomise_objects_inside_their_ranges():
    env = gym.make("PandaPegInsert-v0", controller="python")
    u = env.unwrapped
    pegs, holes = [], []
    for seed in range(10):
        env.reset(seed=seed)
        pegs.append(u.peg_pos)
        holes.append(u.hole_pos)
    pegs, holes = np.array(pegs), np.array(holes)
    assert pegs[:, :2].std(axis=0).min() > 0.01 and holes[:, :2].std(axis=0).min() > 0.01
    assert np.all(holes[:, 1] - pegs[:, 1] > 0.1)  # never overlapping


def test_state_layout_names_the_task_components():
    for env_id, must in [
        ("PandaPegInsert-v0", ("tcp_x", "gripper_width", "peg_z", "hole_x", "peg_bottom_to_hole_z")),
        ("PandaLift-v0", ("cube_x", "tcp_to_cube_z")),
        ("PandaStack-v0", ("cube_a_x", "cube_b_z", "cube_a_to_cube_b_x")),
    ]:
        env = gym.make(env_id, controller="python")
        names = env.unwrapped.robo_spec["observation.state"].names
        obs, _ = env.reset(seed=0)
        for n in must:
            assert n in names
        # the tcp block is the TCP site position, gripper width is both fingers' opening
        np.testing.assert_allclose(obs["observation.state"][:3], env.unwrapped.tcp_pos, atol=1e-6)
        assert abs(obs["observation.state"][names.index("gripper_width")] - 0.08) < 1e-3


def test_objects_rest_still_after_reset():
    """Stable contacts: with the arm holding its pose, objects neither drift nor sink (< 1 mm in 2 s)."""
    cases = [("PandaPegInsert-v0", "peg_pos"), ("PandaLift-v0", "cube_pos"), ("PandaStack-v0", "cube_b_pos")]
    for env_id, attr in cases:
        env = gym.make(env_id, controller="python")
        env.reset(seed=2)
        before = getattr(env.unwrapped, attr)
        for _ in range(20):
            env.step(np.zeros(7, dtype=np.float32))
        assert np.linalg.norm(getattr(env.unwrapped, attr) - before) < 1e-3, env_id
