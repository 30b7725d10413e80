"""Shared fixtures for robo.data tests: a spec factory and a writer of recognisable episodes.

Episode e, frame t carries `observation.state[j] = 1000 e + t + 0.25 j`, `action[j] = -(100 e + t) - j`,
and (with a camera) a smooth gradient image whose level encodes (e, t), so any mix-up of episodes,
frames or keys shows up as a value mismatch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robo.data import DatasetWriter
from robo.spec import Feature, Spec

DS, DA, H, W = 4, 3, 32, 32
CAM = "observation.images.front"
SOURCES = ("policy", "human", "residual", "scripted", "hold")


def make_spec(camera: bool = False, action_dim: int = DA) -> Spec:
    feats = {"observation.state": Feature((DS,), names=tuple(f"s{j}" for j in range(DS)))}
    if camera:
        feats[CAM] = Feature((H, W, 3), dtype="uint8")
    feats["action"] = Feature((action_dim,), low=(-1.0,) * action_dim, high=(1.0,) * action_dim)
    return Spec(feats)


def state_at(e: int, t: int) -> np.ndarray:
    return (1000 * e + t + 0.25 * np.arange(DS)).astype(np.float32)


def action_at(e: int, t: int) -> np.ndarray:
    return (-(100 * e + t) - np.arange(DA)).astype(np.float32)


def image_at(e: int, t: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    base = 40 + 4 * e + 2 * t
    img = np.stack([base + 2 * x, base + 2 * y, np.full((H, W), 60 + 10 * e + t)], axis=-1)
    return img.astype(np.uint8)


def frame_at(e: int, t: int, spec: Spec) -> dict[str, Any]:
    f: dict[str, Any] = {
        "observation.state": state_at(e, t),
        "action": action_at(e, t),
        "action_source": SOURCES[(e + t) % 4],
        "base_action": None if t % 3 == 0 else np.full(spec.action_dim, 0.5 * t, np.float32),
        "intervention": t % 5 == 0,
        "policy_version": 10 * e + t,
        "next.reward": float(t) / 10,
        "capture_timestamp": 1.7e9 + 1000 * e + 0.1 * t,
    }
    if CAM in spec:
        f[CAM] = image_at(e, t)
    return f


@pytest.fixture
def write_dataset() -> Callable[..., Spec]:
    """write_dataset(root, lengths, camera=False, first_episode=0, task="peg") -> spec."""

    def _write(root: Path, lengths: list[int], camera: bool = False, first_episode: int = 0, task: str = "peg") -> Spec:
        spec = make_spec(camera)
        with DatasetWriter(root, spec, fps=10, task=task) as w:
            for k, n in enumerate(lengths):
                e = first_episode + k
                for t in range(n):
                    w.add_frame(frame_at(e, t, spec))
                w.save_episode(success=bool(e % 2 == 0))
        return spec

    return _write
