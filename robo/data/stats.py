"""Feature statistics: per-episode stats and an exact running merge of them.

Layout follows LeRobot's `meta/stats.json`: per feature `min`, `max`, `mean`, `std` (population,
ddof=0) and `count`, as JSON lists. Low-dim features are reduced over frames, giving shape (D,).
Images (uint8 (H, W, 3)) are reduced over frames and pixels per channel, giving shape (3,), in
[0, 1] units (pixel / 255, as LeRobot does; channel-last as robo images are), so `count` for an
image is the number of frames times H x W.

Merging uses the parallel-variance formula (Chan et al.) on (count, mean, M2 = std^2 * count), so
dataset stats are updated per episode without re-reading old data, and can be rebuilt from the
per-episode stats stored in `meta/episodes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STAT_NAMES = ("min", "max", "mean", "std", "count")


@dataclass
class RunningStats:
    """Exact mergeable statistics of one feature (all arrays float64, shape (D,) or (3,))."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @staticmethod
    def from_data(x: np.ndarray, *, image: bool = False) -> RunningStats:
        """Stats of `x` shaped (N, ...) (low-dim, flattened to (N, D)) or (N, H, W, 3) uint8 images."""
        if image:
            return RunningStats._from_uint8(np.asarray(x))
        v = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if len(v) == 0:
            raise ValueError("RunningStats.from_data: no data")
        mean = v.mean(axis=0)
        return RunningStats(
            count=len(v), mean=mean, m2=((v - mean) ** 2).sum(axis=0), min=v.min(axis=0), max=v.max(axis=0)
        )

    @staticmethod
    def _from_uint8(x: np.ndarray) -> RunningStats:
        """Exact per-channel stats of uint8 (..., C) images in [0, 1] units via 256-bin histograms."""
        if x.dtype != np.uint8 or x.size == 0:
            raise ValueError(f"RunningStats: images must be non-empty uint8, got {x.dtype} {x.shape}")
        flat = x.reshape(-1, x.shape[-1])
        levels = np.arange(256, dtype=np.float64) / 255.0
        hist = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])]).astype(np.float64)
        count = len(flat)
        mean = hist @ levels / count
        m2 = (hist * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1)
        nonzero = hist > 0
        lo = np.array([levels[np.argmax(nz)] for nz in nonzero])
        hi = np.array([levels[255 - np.argmax(nz[::-1])] for nz in nonzero])
        return RunningStats(count=count, mean=mean, m2=m2, min=lo, max=hi)

    @staticmethod
    def from_json(d: dict[str, Any]) -> RunningStats:
        """Inverse of `to_json` (M2 recovered from std and count)."""
        count = int(np.asarray(d["count"]).reshape(-1)[0])
        std = np.asarray(d["std"], dtype=np.float64).reshape(-1)
        return RunningStats(
            count=count,
            mean=np.asarray(d["mean"], dtype=np.float64).reshape(-1),
            m2=std**2 * count,
            min=np.asarray(d["min"], dtype=np.float64).reshape(-1),
            max=np.asarray(d["max"], dtype=np.float64).reshape(-1),
        )

    def merge(self, other: RunningStats) -> RunningStats:
        """Stats of the union of both data sets."""
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return RunningStats(n, mean, m2, np.minimum(self.min, other.min), np.maximum(self.max, other.max))

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2 / max(self.count, 1), 0.0))

    def to_json(self) -> dict[str, list[float] | list[int]]:
        return {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": [int(self.count)],
        }


def merge_all(parts: list[dict[str, RunningStats]]) -> dict[str, RunningStats]:
    """Merge per-episode {key: RunningStats} dicts into dataset stats (keys present in any part)."""
    out: dict[str, RunningStats] = {}
    for part in parts:
        for key, s in part.items():
            out[key] = out[key].merge(s) if key in out else s
    return out


def stats_to_json(stats: dict[str, RunningStats]) -> dict[str, dict[str, list[float] | list[int]]]:
    return {k: s.to_json() for k, s in stats.items()}
