"""The Panda tasks run their low-level control through the C++ controller (controller="cpp") and the
scripted experts still solve them: grasping, lifting, stacking and insertion stay stable."""

from __future__ import annotations

import gymnasium as gym
import pytest

import robo.sim  # noqa: F401  (registers the tasks)
from robo.drivers import rt
from robo.sim.experts import make_expert


@pytest.mark.parametrize("task", ["PandaLift-v0", "PandaPegInsert-v0", "PandaStack-v0"])
def test_scripted_expert_succeeds_on_the_cpp_controller(task):
    env = gym.make(task, controller="cpp")
    ctrl = env.unwrapped.ctrl
    assert isinstance(ctrl, rt.MujocoController)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        expert = make_expert(env, noise=0.0, seed=seed)
        expert.reset()
        info = {"success": False}
        for _ in range(400):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        assert info["success"], (task, seed)
    events = ctrl.events()
    assert events["watchdog_trips"] == 0 and events["nonfinite_torque"] == 0
    assert events["commands_accepted"] > 0
    env.close()
