"""Example robo task plug-in: importing it registers its tasks with Gymnasium."""

import gymnasium as gym

gym.register(id="ExampleTasks/PandaReach-v0", entry_point="example_tasks.reach:ReachV0", max_episode_steps=40)
