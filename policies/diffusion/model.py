"""Diffusion action-chunk policy: DDPM-trained 1-D U-Net, DDIM sampling (Chi et al., 2023).

Training: t ~ U{0..N-1}, x_t = sqrt(abar_t) a + sqrt(1 - abar_t) eps, loss = |eps_theta(x_t, t, obs) - eps|^2
(or the clean chunk when prediction_type="sample"), over non-padded steps. Inference: K DDIM steps
from x ~ N(0, I) (B, T, Da); see `ChunkPolicy.predict_chunk` for the loop.
"""

from __future__ import annotations

from typing import ClassVar

from robo.policies.common.policy import ChunkPolicy
from robo.policies.common.samplers import DDIMSampler, DDPMSampler, DiffusionSampler

from .config import DiffusionConfig


class DiffusionPolicy(ChunkPolicy):
    """`make_policy("diffusion", DiffusionConfig(), spec, stats)`; contract in `ChunkPolicy`."""

    name: ClassVar[str] = "diffusion"
    config_class: ClassVar[type[DiffusionConfig]] = DiffusionConfig
    config: DiffusionConfig

    def make_sampler(self) -> DiffusionSampler:
        c = self.config
        cls = DDIMSampler if c.sampler == "ddim" else DDPMSampler
        return cls(
            num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
            prediction_type=c.prediction_type, clip_sample=c.clip_sample,
            clip_sample_range=c.clip_sample_range, beta_start=c.beta_start, beta_end=c.beta_end,
        )
