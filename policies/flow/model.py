"""Rectified-flow action-chunk policy: same U-Net and encoders as diffusion, velocity target.

Training: t ~ U[0, 1) (or 1 - Beta(a, 1)), x0 ~ N(0, I), x1 = normalised action chunk (B, T, Da),
x_t = (1 - t) x0 + t x1, loss = |v_theta(x_t, t, obs) - (x1 - x0)|^2 over non-padded steps.
Inference: K Euler steps x <- x + (1 / K) v_theta(x, t, obs) from t = 0 to 1.
"""

from __future__ import annotations

from typing import ClassVar

from robo.policies.common.policy import ChunkPolicy
from robo.policies.common.samplers import FlowEulerSampler

from .config import FlowConfig


class FlowPolicy(ChunkPolicy):
    """`make_policy("flow", FlowConfig(), spec, stats)`; contract in `ChunkPolicy`."""

    name: ClassVar[str] = "flow"
    config_class: ClassVar[type[FlowConfig]] = FlowConfig
    config: FlowConfig

    def make_sampler(self) -> FlowEulerSampler:
        c = self.config
        return FlowEulerSampler(t_sampling=c.t_sampling, beta_alpha=c.t_beta_alpha, time_scale=c.time_scale)
