"""Observation/action specs: flat dicts of named arrays, described once.

Keys follow LeRobot conventions: `observation.state`, `observation.images.<cam>`, `action`.
A `Spec` maps each key to a `Feature` (shape, dtype, units, limits). Normalisation statistics live
beside the spec (dataset `meta/stats.json`, checkpoint `stats.json`), never inside a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATE = "observation.state"
ACTION = "action"
IMAGE_PREFIX = "observation.images."


@dataclass(frozen=True)
class Feature:
    """One named array: `shape` excludes batch/time dims; `low`/`high` are physical limits if known."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    names: tuple[str, ...] | None = None
    units: str | None = None
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": "video" if self.is_image else self.dtype, "shape": list(self.shape)}
        out["names"] = list(self.names) if self.names else None
        if self.units:
            out["units"] = self.units
        if self.low is not None:
            out["low"] = list(self.low)
        if self.high is not None:
            out["high"] = list(self.high)
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> Feature:
        dtype = "uint8" if d["dtype"] in ("video", "image") else d["dtype"]
        return Feature(
            shape=tuple(d["shape"]),
            dtype=dtype,
            names=tuple(d["names"]) if d.get("names") else None,
            units=d.get("units"),
            low=tuple(d["low"]) if d.get("low") is not None else None,
            high=tuple(d["high"]) if d.get("high") is not None else None,
        )

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3 and self.dtype == "uint8"


@dataclass
class Spec:
    """Name -> Feature for observations and the action."""

    features: dict[str, Feature] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Feature:
        return self.features[key]

    def __contains__(self, key: str) -> bool:
        return key in self.features

    @property
    def image_keys(self) -> list[str]:
        return [k for k in self.features if k.startswith(IMAGE_PREFIX)]

    @property
    def action_dim(self) -> int:
        return int(np.prod(self.features[ACTION].shape))

    @property
    def state_dim(self) -> int:
        return int(np.prod(self.features[STATE].shape))

    def to_json(self) -> dict[str, Any]:
        return {k: f.to_json() for k, f in self.features.items()}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Spec:
        return Spec({k: Feature.from_json(v) for k, v in d.items() if isinstance(v, dict) and "shape" in v})

    def check(self, sample: dict[str, np.ndarray], where: str = "sample") -> None:
        """Raise ValueError naming the key when `sample` does not match this spec (shape, NaN)."""
        for key, feat in self.features.items():
            if key not in sample:
                continue
            arr = np.asarray(sample[key])
            if tuple(arr.shape[-len(feat.shape):]) != tuple(feat.shape):
                raise ValueError(f"{where}: '{key}' has shape {arr.shape}, spec says {feat.shape}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError(f"{where}: '{key}' contains NaN or inf")
