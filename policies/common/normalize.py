"""Normalisation from dataset stats (`meta/stats.json` format: `{key: {"min", "max", "mean", "std"}}`).

- actions: min-max to [-1, 1]: `(a - center) / half_range`, center = (max + min) / 2,
  half_range = (max - min) / 2; a dimension with (near) zero range gets half_range = eps, so a constant
  action maps to 0 and ANY model output maps back to (almost exactly) that constant. (half_range = 1
  would turn the model's residual noise in a dimension the data never used into raw actions, e.g.
  spurious wrist rotations.)
- state: mean/std: `(s - mean) / std`, clipped to +-10; std below `eps` is replaced by 1.
- images: uint8 (.., H, W, 3) -> float (.., 3, H, W) in [0, 1] (/255); no stats used.

Stats are kept as non-persistent buffers: they follow `.to(device)` but are saved in `stats.json`,
never in `model.safetensors` (stats live beside the model, DESIGN "Spec").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

EPS = 1e-6
CLIP_STD = 10.0  # standardised inputs are clipped to +-CLIP_STD


def _vec(stats: dict[str, Any], key: str, field: str, dim: int) -> Tensor:
    try:
        v = np.asarray(stats[key][field], dtype=np.float64).reshape(-1)
    except KeyError:
        raise ValueError(f"stats: missing '{key}'.'{field}' (needed for normalisation)") from None
    if v.size != dim:
        raise ValueError(f"stats: '{key}'.'{field}' has {v.size} values, spec says {dim}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"stats: '{key}'.'{field}' contains NaN or inf")
    return torch.as_tensor(v, dtype=torch.float32)


class MinMaxNormalizer(nn.Module):
    """x (..., D) raw <-> (..., D) in [-1, 1] from stats min/max (zero range guarded)."""

    def __init__(self, stats: dict[str, Any], key: str, dim: int) -> None:
        super().__init__()
        lo, hi = _vec(stats, key, "min", dim), _vec(stats, key, "max", dim)
        if torch.any(hi < lo):
            raise ValueError(f"stats: '{key}' has max < min")
        half = (hi - lo) / 2
        half = half.clamp(min=EPS)
        self.register_buffer("center", (hi + lo) / 2, persistent=False)
        self.register_buffer("half_range", half, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.center) / self.half_range

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.half_range + self.center


def mean_std(stats: dict[str, Any], key: str, dim: int) -> tuple[Tensor, Tensor]:
    """(mean, std) of `key` as the one standardisation rule uses them: a std below `EPS` becomes 1."""
    mean, std = _vec(stats, key, "mean", dim), _vec(stats, key, "std", dim)
    return mean, torch.where(std < EPS, torch.ones_like(std), std)


class MeanStdNormalizer(nn.Module):
    """x (..., D) raw <-> (..., D) standardised from stats mean/std (std < eps -> 1), clipped to +-CLIP_STD."""

    def __init__(self, stats: dict[str, Any], key: str, dim: int) -> None:
        super().__init__()
        mean, std = mean_std(stats, key, dim)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        # Clipped: a feature that barely varies in the demos (e.g. a small tilt) must not become a
        # huge input when it drifts at test time.
        return ((x - self.mean) / self.std).clamp(-CLIP_STD, CLIP_STD)

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.std + self.mean


class StateNormalizer:
    """NumPy twin of `MeanStdNormalizer` (same rule, same clip) for RL features outside torch models:
    (N, D) raw -> (N, D) float32. Without stats (RL from scratch) it is the identity, clipped."""

    def __init__(self, stats: dict[str, Any] | None, key: str, dim: int) -> None:
        if stats is not None and key in stats:
            mean, std = mean_std(stats, key, dim)
            self.mean, self.std = mean.numpy(), std.numpy()
        else:
            self.mean, self.std = np.zeros(dim, np.float32), np.ones(dim, np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(x, np.float32) - self.mean) / self.std, -CLIP_STD, CLIP_STD).astype(np.float32)


def normalize_image(img: Tensor) -> Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1]."""
    if img.shape[-1] != 3:
        raise ValueError(f"image has shape {tuple(img.shape)}, expected (..., H, W, 3)")
    return img.movedim(-1, -3).float() / 255.0


def stats_to_json(stats: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe deep copy of a stats dict (numpy arrays/tensors -> lists)."""
    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, (np.ndarray, np.generic)):
            return v.tolist()
        if isinstance(v, Tensor):
            return v.detach().cpu().tolist()
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(stats)
