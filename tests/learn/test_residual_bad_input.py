"""Bad input to residual RL: a base for another task is refused; NaN observations/rewards are dropped and
counted while training continues, and nothing non-finite reaches the replay buffer."""

import gymnasium as gym
import numpy as np
import pytest

from robo.data.segments import SegmentStore
from robo.learn.residual_env import ResidualVecEnv
from robo.learn.residual_td3 import ALGORITHM, ResidualTD3Config
from robo.learn.spine import train
from robo.policies import load_policy
from robo.spec import STATE

NAN_OBS_EVERY, NAN_REWARD_EVERY = 37, 75


class CorruptingWrapper(gym.Wrapper):
    """PandaLift whose k-th step (counted across episodes) returns a NaN state every 37 steps and a NaN
    reward every 75: a flaky sensor / a diverging reward function."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.k = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.k += 1
        if self.k % NAN_OBS_EVERY == 0:
            obs = dict(obs, **{STATE: np.full_like(obs[STATE], np.nan)})
        if self.k % NAN_REWARD_EVERY == 0:
            reward = float("nan")
        return obs, reward, terminated, truncated, info


gym.register("RoboTest/CorruptLift-v0", entry_point=lambda **kw: CorruptingWrapper(gym.make("PandaLift-v0", **kw)))


def test_nan_steps_are_dropped_counted_and_training_continues(tmp_path):
    steps = 400
    cfg = ResidualTD3Config(task="RoboTest/CorruptLift-v0", base="none", total_env_steps=steps, learning_starts=100,
                            critic_warmup_updates=50, batch_size=32, actor_hidden=32, critic_hidden=32, num_q=2,
                            utd=1, eval_every=10_000, eval_episodes=1, final_eval_episodes=1, checkpoint_every=10_000,
                            buffer_size=1000, torch_threads=1, device="cpu")
    state = train(ALGORITHM, cfg, tmp_path / "run", report=False)
    # the budget counts stored rows: every env step but the dropped ones (and the open n-step window)
    assert state["n_rows"] == steps
    expected = state["env_steps"] // NAN_OBS_EVERY + state["env_steps"] // NAN_REWARD_EVERY
    assert state["dropped_steps"] == expected and expected >= 15
    assert steps + expected <= state["env_steps"] <= steps + expected + cfg.n_step
    assert state["updates"] > 0
    with SegmentStore(tmp_path / "run" / "replay") as store:
        rows = [r for r, _ in store]
    assert sum(len(r["obs"]) for r in rows) == steps
    for r in rows:
        for key in ("obs", "next_obs", "reward", "action"):
            assert np.isfinite(r[key]).all(), key


def test_base_for_another_task_is_refused(lift_bc):
    base = load_policy(lift_bc[1]["checkpoint"])  # trained on PandaLift-v0's state layout
    with pytest.raises(ValueError, match="PandaPegInsert-v0"):
        ResidualVecEnv("PandaPegInsert-v0", base)
