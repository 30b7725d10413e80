"""Policies for runtime tests, importable by `robo serve --policy runtime_helpers:<factory>`."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

DA = 2


def traj(t):
    """A smooth reference trajectory in action space, (..., Da)."""
    t = np.asarray(t, dtype=np.float64)
    return np.stack([np.sin(0.1 * t), np.cos(0.07 * t)], axis=-1).astype(np.float32)


class TrajPolicy:
    """predict_chunk reads the step index from observation.state[..., -1, 0] and returns the reference
    trajectory from that step on (T' = horizon). `calls` records batch sizes; `delay_s` sleeps."""

    def __init__(self, horizon: int = 16, delay_s: float = 0.0) -> None:
        self.horizon = horizon
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.lock = threading.Lock()
        self.n_obs_steps = 2
        self.n_action_steps = 8
        self.action_dim = DA

    def predict_chunk(self, obs):
        state = np.asarray(obs["observation.state"])
        with self.lock:
            self.calls.append(state.shape[0])
        if self.delay_s:
            time.sleep(self.delay_s)
        t0 = state[:, -1, 0]
        return traj(t0[:, None] + np.arange(self.horizon)[None, :])


def make_traj_policy() -> TrajPolicy:
    return TrajPolicy(horizon=int(os.environ.get("TRAJ_HORIZON", "16")))


def make_failing_policy():
    class Failing(TrajPolicy):
        def predict_chunk(self, obs):
            if float(np.asarray(obs["observation.state"])[0, -1, 1]) < 0:
                raise RuntimeError("negative input")
            return super().predict_chunk(obs)

    return Failing()


def make_image_policy() -> TrajPolicy:
    """A TrajPolicy with a spec, as a checkpoint has: state (3,) float32 and a 48x64 colour camera."""
    from robo.spec import Feature, Spec

    policy = TrajPolicy()
    policy.spec = Spec({
        "observation.state": Feature((3,)),
        "observation.images.front": Feature((48, 64, 3), "uint8"),
        "action": Feature((DA,)),
    })
    return policy
