"""Feature statistics: per-episode stats and a running merge of them, in LeRobot v3's layout.

`meta/stats.json` (and each episode's `stats/<key>/<stat>` columns in `meta/episodes`) hold, per
feature, `min`, `max`, `mean`, `std` (population, ddof=0), `count` and the quantiles `q01`, `q10`,
`q50`, `q90`, `q99`, as JSON lists, the way LeRobot 0.4 writes them:

- low-dim features are reduced over frames: shape (D,) ((1,) for a scalar column); `count` = frames.
- images (uint8 (H, W, 3)) are reduced over frames and pixels per channel, in [0, 1] units
  (pixel / 255), stored with shape (3, 1, 1) so they broadcast against a (B, 3, H, W) image;
  `count` = frames (as LeRobot counts). Computed exactly from 256-bin histograms of all frames.

Merging: min/max/mean/std are exact (parallel variance of Chan et al. on count, mean and
M2 = std^2 * count), so dataset stats are updated per episode without re-reading old data and can be
rebuilt from the per-episode rows. Quantiles are exact within an episode and merged as the
count-weighted mean of the episodes' quantiles, which is how LeRobot aggregates them (approximate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_NAMES = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
STAT_NAMES = ("min", "max", "mean", "std", "count")
IMAGE_STAT_SHAPE = (3, 1, 1)


@dataclass
class RunningStats:
    """Mergeable statistics of one feature (float64 arrays of shape (D,); (3,) per channel for images)."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    quantiles: dict[str, np.ndarray] | None = None
    """`q01`..`q99` -> (D,), or None when a merged part had none (stats written before robo schema 2)."""
    image: bool = False
    """Stored as (3, 1, 1) per-channel arrays, the LeRobot image layout."""

    @staticmethod
    def from_data(x: np.ndarray, *, image: bool = False) -> RunningStats:
        """Stats of `x` shaped (N, ...) (low-dim, flattened to (N, D)) or (N, H, W, 3) uint8 images."""
        if image:
            return RunningStats._from_uint8(np.asarray(x))
        v = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if len(v) == 0:
            raise ValueError("RunningStats.from_data: no data")
        mean = v.mean(axis=0)
        q = np.quantile(v, QUANTILES, axis=0)
        return RunningStats(
            count=len(v),
            mean=mean,
            m2=((v - mean) ** 2).sum(axis=0),
            min=v.min(axis=0),
            max=v.max(axis=0),
            quantiles=dict(zip(QUANTILE_NAMES, q)),
        )

    @staticmethod
    def _from_uint8(x: np.ndarray) -> RunningStats:
        """Exact per-channel stats of uint8 (N, ..., C) images in [0, 1] units via 256-bin histograms."""
        if x.dtype != np.uint8 or x.size == 0:
            raise ValueError(f"RunningStats: images must be non-empty uint8, got {x.dtype} {x.shape}")
        flat = x.reshape(-1, x.shape[-1])
        levels = np.arange(256, dtype=np.float64) / 255.0
        hist = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])]).astype(np.float64)
        n_pixels = len(flat)
        mean = hist @ levels / n_pixels
        var = (hist * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / n_pixels
        nonzero = hist > 0
        lo = np.array([levels[np.argmax(nz)] for nz in nonzero])
        hi = np.array([levels[255 - np.argmax(nz[::-1])] for nz in nonzero])
        n_frames = len(x)
        return RunningStats(
            count=n_frames,
            mean=mean,
            m2=var * n_frames,
            min=lo,
            max=hi,
            quantiles=dict(zip(QUANTILE_NAMES, _histogram_quantiles(hist, levels))),
            image=True,
        )

    @staticmethod
    def from_json(d: dict[str, Any], *, pixels_per_frame: int | None = None) -> RunningStats:
        """Inverse of `to_json` (M2 recovered from std and count).

        Images are recognised by their (3, 1, 1) layout. Stats robo wrote before schema 2 kept images
        as (3,) with `count` = frames x pixels: pass the image's H x W as `pixels_per_frame` to get
        frame counts (the reader does, for image keys)."""
        count = int(np.asarray(d["count"]).reshape(-1)[0])
        mean = np.asarray(d["mean"], dtype=np.float64)
        image = mean.ndim == 3
        if pixels_per_frame and not image:  # an image key in the pre-schema-2 layout
            image, count = True, max(1, count // pixels_per_frame)
        std = np.asarray(d["std"], dtype=np.float64).reshape(-1)
        quantiles = None
        if all(q in d for q in QUANTILE_NAMES):
            quantiles = {q: np.asarray(d[q], dtype=np.float64).reshape(-1) for q in QUANTILE_NAMES}
        return RunningStats(
            count=count,
            mean=mean.reshape(-1),
            m2=std**2 * count,
            min=np.asarray(d["min"], dtype=np.float64).reshape(-1),
            max=np.asarray(d["max"], dtype=np.float64).reshape(-1),
            quantiles=quantiles,
            image=image,
        )

    def merge(self, other: RunningStats) -> RunningStats:
        """Stats of the union of both data sets (quantiles: count-weighted mean, see module doc)."""
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        quantiles = None
        if self.quantiles is not None and other.quantiles is not None:
            quantiles = {
                q: (self.quantiles[q] * self.count + other.quantiles[q] * other.count) / n for q in QUANTILE_NAMES
            }
        return RunningStats(
            n,
            mean,
            m2,
            np.minimum(self.min, other.min),
            np.maximum(self.max, other.max),
            quantiles,
            self.image or other.image,
        )

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2 / max(self.count, 1), 0.0))

    def to_json(self) -> dict[str, list[Any]]:
        """LeRobot's per-feature dict: (D,) lists, or (3, 1, 1) nested lists for images; count [n]."""

        def out(v: np.ndarray) -> list[Any]:
            return (v.reshape(IMAGE_STAT_SHAPE) if self.image else v).tolist()

        d: dict[str, list[Any]] = {"min": out(self.min), "max": out(self.max), "mean": out(self.mean),
                                   "std": out(self.std), "count": [int(self.count)]}
        for q, v in (self.quantiles or {}).items():
            d[q] = out(v)
        return d


def _histogram_quantiles(hist: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """np.quantile(..., method="linear") per channel of the data a (C, L) histogram over `levels` counts.

    Returns (len(QUANTILES), C)."""
    n = hist.sum(axis=1)
    cum = np.cumsum(hist, axis=1)
    out = np.empty((len(QUANTILES), hist.shape[0]))
    for c in range(hist.shape[0]):
        pos = np.asarray(QUANTILES) * (n[c] - 1)  # positions in the sorted data
        lo, hi = np.floor(pos), np.ceil(pos)
        v_lo = levels[np.searchsorted(cum[c], lo, side="right")]
        v_hi = levels[np.searchsorted(cum[c], hi, side="right")]
        out[:, c] = v_lo + (pos - lo) * (v_hi - v_lo)
    return out


def merge_all(parts: list[dict[str, RunningStats]]) -> dict[str, RunningStats]:
    """Merge per-episode {key: RunningStats} dicts into dataset stats (keys present in any part)."""
    out: dict[str, RunningStats] = {}
    for part in parts:
        for key, s in part.items():
            out[key] = out[key].merge(s) if key in out else s
    return out


def stats_to_json(stats: dict[str, RunningStats]) -> dict[str, dict[str, list[Any]]]:
    return {k: s.to_json() for k, s in stats.items()}
