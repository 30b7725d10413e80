"""Config of the rectified-flow action-chunk policy (Liu et al., 2022; Lipman et al., 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robo.policies.common.config import ChunkPolicyConfig


@dataclass
class FlowConfig(ChunkPolicyConfig):
    """Flow-matching policy: linear noise-to-data path, velocity regression, K Euler steps."""

    name: str = "flow"
    """Registry name; must be "flow"."""
    num_inference_steps: int = 4
    """K: Euler steps from noise (t = 0) to data (t = 1); K = 1 is a single step."""
    t_sampling: Literal["uniform", "beta"] = "uniform"
    """Training t distribution: uniform on [0, 1), or 1 - Beta(t_beta_alpha, 1) (more weight near noise)."""
    t_beta_alpha: float = 1.5
    """Shape a of the "beta" t distribution (> 0)."""
    time_scale: float = 100.0
    """t in [0, 1] is multiplied by this before the sinusoidal time embedding."""

    def __post_init__(self) -> None:
        if self.name != "flow":
            raise ValueError(f"name={self.name!r} must be 'flow' for FlowConfig")
        super().__post_init__()
        if self.t_sampling not in ("uniform", "beta"):
            raise ValueError(f"t_sampling={self.t_sampling!r} is not one of ['uniform', 'beta']")
        if self.t_beta_alpha <= 0:
            raise ValueError(f"t_beta_alpha={self.t_beta_alpha} is out of range (0, inf]")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale={self.time_scale} is out of range (0, inf]")
