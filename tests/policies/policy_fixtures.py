"""Tiny specs, stats, observations and configs shared by the policy tests (seconds on 1 CPU thread)."""

from __future__ import annotations

import numpy as np

from robo.policies import DiffusionConfig, FlowConfig
from robo.spec import Feature, Spec

DS, DA, TO, T = 4, 2, 2, 8
TINY = dict(horizon=T, n_obs_steps=TO, n_action_steps=4, backbone="unet", down_dims=(16, 32), time_embed_dim=16,
            state_feat_dim=16, image_feat_dim=16, image_channels=8, num_keypoints=8)


def tiny_config(name: str, **kw):
    cls = DiffusionConfig if name == "diffusion" else FlowConfig
    return cls(**{**TINY, **kw})


def make_spec(cams: tuple[str, ...] = (), image_size: int = 32) -> Spec:
    feats = {"observation.state": Feature((DS,)), "action": Feature((DA,))}
    for c in cams:
        feats[f"observation.images.{c}"] = Feature((image_size, image_size, 3), dtype="uint8")
    return Spec(feats)


def make_stats() -> dict:
    return {
        "observation.state": {"min": [-1.0] * DS, "max": [1.0] * DS, "mean": [0.0] * DS, "std": [0.577] * DS},
        "action": {"min": [-2.0, -1.5], "max": [2.0, 1.5], "mean": [0.0, 0.0], "std": [1.0, 0.8]},
    }


def make_obs(b: int = 3, cams: tuple[str, ...] = (), seed: int = 0, image_size: int = 32) -> dict:
    rng = np.random.default_rng(seed)
    obs = {"observation.state": rng.uniform(-1, 1, (b, TO, DS)).astype(np.float32)}
    for c in cams:
        obs[f"observation.images.{c}"] = rng.integers(0, 256, (b, TO, image_size, image_size, 3), dtype=np.uint8)
    return obs
