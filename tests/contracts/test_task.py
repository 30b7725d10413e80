"""Conformance test for robo.sim tasks (STYLE rule 13; docs/CONTRACTS.md "Tasks").

A task's test subclasses `TaskContract` and sets `env_id` (see tests/sim/test_tasks.py):

    class TestPegInsert(TaskContract):
        env_id = "PandaPegInsert-v0"
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robo.sim  # noqa: F401  (registers the ids)
from robo.spec import ACTION, IMAGE_PREFIX, STATE, Spec


class TaskContract:
    """Subclass and set `env_id`; `max_steps_limit` bounds the time limit (short horizons for RL)."""

    env_id: str = ""
    max_steps_limit = 150
    controller = "python"  # the reference; the C++ controller has its own tests

    def make(self, **kwargs) -> gym.Env:
        return gym.make(self.env_id, controller=self.controller, **kwargs)

    @staticmethod
    def rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list[np.ndarray]:
        obs, _ = env.reset(seed=seed)
        states = [obs[STATE]]
        for a in actions:
            obs, *_ = env.step(a)
            states.append(obs[STATE])
        return states

    # -- contract ----------------------------------------------------------------------------------
    def test_passes_gymnasium_check_env_without_warnings(self):
        env = self.make(cameras=("front",), image_size=16)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # check_env reports soft problems as warnings
            check_env(env.unwrapped)
        env.close()

    def test_spec_names_spaces_and_bounds(self):
        env = self.make()
        u = env.unwrapped
        spec = u.robo_spec
        assert isinstance(spec, Spec)
        assert isinstance(u.task_description, str) and u.task_description
        state_space = env.observation_space[STATE]
        assert spec[STATE].shape == state_space.shape and state_space.dtype == np.float32
        assert spec[STATE].names is not None and len(spec[STATE].names) == state_space.shape[0]
        assert len(set(spec[STATE].names)) == len(spec[STATE].names)
        assert env.action_space.shape == (7,) and env.action_space.dtype == np.float32
        np.testing.assert_array_equal(spec[ACTION].low, env.action_space.low)
        np.testing.assert_array_equal(spec[ACTION].high, env.action_space.high)
        assert env.action_space.low[6] == -1.0 and env.action_space.high[6] == 1.0
        assert 0 < env.action_space.high[0] <= 0.05  # m per step
        assert 0 < env.spec.max_episode_steps <= self.max_steps_limit

    def test_obs_match_spec_and_stay_finite(self):
        env = self.make(cameras=("front",), image_size=24)
        obs, info = env.reset(seed=0)
        assert info["success"] is False
        spec = env.unwrapped.robo_spec
        env.action_space.seed(0)
        for _ in range(5):
            spec.check(obs, where=self.env_id)
            assert obs[STATE].dtype == np.float32 and obs[STATE] in env.observation_space[STATE]
            img = obs[IMAGE_PREFIX + "front"]
            assert img.shape == (24, 24, 3) and img.dtype == np.uint8 and img.std() > 1.0  # not blank
            obs, *_ = env.step(env.action_space.sample())
        env.close()

    def test_same_seed_same_observations(self):
        env_a, env_b = self.make(), self.make()
        actions = np.random.default_rng(1).uniform(-1, 1, (8, 7)).astype(np.float32) * env_a.action_space.high
        a = self.rollout(env_a, 5, actions)
        b = self.rollout(env_b, 5, actions)
        c = self.rollout(env_a, 5, actions)  # same env again
        for x, y, z in zip(a, b, c):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
        other, _ = env_a.reset(seed=6)
        assert not np.array_equal(other[STATE], a[0])  # another seed, another layout

    def test_reward_terminated_and_time_limit(self):
        env = self.make()
        env.reset(seed=0)
        zero = np.zeros(7, dtype=np.float32)
        limit = env.spec.max_episode_steps
        for t in range(limit):
            obs, reward, terminated, truncated, info = env.step(zero)  # holding still never succeeds
            assert isinstance(info["success"], bool) and not info["success"]
            assert reward == 0.0 and not terminated
            assert truncated == (t == limit - 1)

    def test_action_bounds_and_nan_are_safe(self):
        env = self.make()
        env.reset(seed=0)
        u = env.unwrapped
        before = u.target_pos.copy()
        env.step(np.full(7, 100.0, dtype=np.float32))  # clipped to one max step
        delta = (u.target_pos - before).ravel()  # one TCP (3,), or both hands of a humanoid (2, 3)
        np.testing.assert_allclose(delta, env.action_space.high[:delta.size], atol=1e-9)
        obs, *_ = env.step(np.full(7, np.nan, dtype=np.float32))
        assert np.all(np.isfinite(obs[STATE]))
        assert np.all(np.isfinite(u.data.ctrl))

    def test_render_rgb_array_and_bad_camera(self):
        env = self.make(render_mode="rgb_array", cameras=("front",), image_size=16)
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8
        env.close()
        with pytest.raises(ValueError, match="camera"):
            self.make(cameras=("no_such_camera",))
