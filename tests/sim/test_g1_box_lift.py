"""G1BoxLift-v0 against the shared task contract (tests/contracts/test_task.py), its scripted expert,
and the task specifics: squeeze, hands kept apart, success, seeded box layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import robo.sim  # noqa: F401  (registers the ids)
from robo.sim.experts import make_expert
from robo.sim.tasks import g1_box_lift_v0 as task
from robo.spec import STATE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contracts"))
from test_task import TaskContract  # noqa: E402


class TestG1BoxLift(TaskContract):
    env_id = "G1BoxLift-v0"
    controller = "cpp"  # the G1 runs on the C++ controller only


def run_episode(env, expert, seed: int) -> tuple[bool, int]:
    obs, _ = env.reset(seed=seed)
    expert.reset()
    for t in range(env.spec.max_episode_steps):
        action = expert.act(obs)
        assert action in env.action_space
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return bool(info["success"]), t + 1
    return False, env.spec.max_episode_steps


def test_expert_succeeds_at_noise_zero_over_20_seeds():
    env = gym.make("G1BoxLift-v0")
    expert = make_expert(env, noise=0.0, seed=0)
    results = [run_episode(env, expert, seed) for seed in range(20)]
    success = np.mean([ok for ok, _ in results])
    assert success >= 0.9, results
    assert env.unwrapped.n_rejected == 0  # every hand target the task sent was inside the controller's box


def test_expert_noise_degrades_success():
    env = gym.make("G1BoxLift-v0")
    clean = make_expert(env, noise=0.0, seed=1)
    noisy = make_expert(env, noise=4.0, seed=1)
    ok_clean = [run_episode(env, clean, s)[0] for s in range(6)]
    ok_noisy = [run_episode(env, noisy, s)[0] for s in range(6)]
    assert sum(ok_noisy) < sum(ok_clean)


def test_squeeze_presses_the_hand_targets_together_and_hands_stay_apart():
    env = gym.make("G1BoxLift-v0")
    env.reset(seed=0)
    u = env.unwrapped
    a = np.zeros(7, np.float32)
    env.step(a)
    open_targets = u.commanded_targets()
    a[6] = 1.0
    env.step(a)
    pressed = u.commanded_targets()
    gap = lambda t: t[0, 1] - t[1, 1]  # noqa: E731
    assert gap(pressed) == pytest.approx(gap(open_targets) - 2 * task.SQUEEZE_DEPTH, abs=1e-9)
    a[:] = 0.0
    a[1], a[4] = -task.MAX_DPOS, task.MAX_DPOS  # both hands inward, many steps
    for _ in range(40):
        env.step(a)
    assert gap(u.target_pos) >= task.MIN_GAP - 1e-9


def test_success_when_the_box_is_lifted_and_layouts_follow_the_seed():
    env = gym.make("G1BoxLift-v0")
    env.reset(seed=3)
    u = env.unwrapped
    assert not u._is_success()
    q = u._box_q
    u.data.qpos[q + 2] = u.rest_z + task.LIFT_HEIGHT + 0.01
    mujoco.mj_forward(u.model, u.data)
    assert u._is_success()
    boxes = []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        box = obs[STATE][7:10]
        assert task.BOX_X[0] <= box[0] <= task.BOX_X[1] and task.BOX_Y[0] <= box[1] <= task.BOX_Y[1]
        boxes.append(box)
    assert len({tuple(np.round(b, 6)) for b in boxes}) == 5


def test_the_python_controller_is_refused():
    with pytest.raises(ValueError, match="C\\+\\+ controller"):
        gym.make("G1BoxLift-v0", controller="python")
