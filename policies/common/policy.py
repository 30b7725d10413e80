"""`ChunkPolicy`: the shared body of the diffusion and flow action-chunk policies.

A subclass only chooses its sampler (`make_sampler`); encoders, U-Net, normalisation, loss, the
sampling loop and checkpoints are shared. Shapes: B batch, To = n_obs_steps, T = horizon,
Da = action dim, Ds = state dim, H, W image size.

    loss = policy.compute_loss(batch)     # batch: {"observation.state": (B, To, Ds),
                                          #         "observation.images.<cam>": (B, To, H, W, 3) uint8,
                                          #         "action": (B, T, Da), "action_is_pad": (B, T) bool}
    chunk = policy.predict_chunk(obs, seed=0)   # obs: {key: (B, To, ...)} raw -> (B, T - To + 1, Da) raw

Action index 0 of the window belongs to the first observation step, so the current step is index
To - 1; `predict_chunk` returns actions from the current step on (T - To + 1 of them, of which the
executor runs `config.n_action_steps` by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from robo.spec import ACTION, STATE, Spec

from .chain import DenoisingChain, NoiseStd, gaussian_log_prob, noise_at
from .checkpoint import save_checkpoint
from .config import ChunkPolicyConfig
from .encoders import ObsEncoder
from .mlp_denoiser import ConditionalMLP
from .normalize import MeanStdNormalizer, MinMaxNormalizer, normalize_image, stats_to_json
from .samplers import DDPMSampler, Sampler
from .unet1d import ConditionalUnet1D


def _as_tensor(v: Any) -> Tensor:
    """A tensor view of a numpy array / tensor / nested list (never modified in place)."""
    return v if isinstance(v, Tensor) else torch.from_numpy(np.ascontiguousarray(v))


class ChunkPolicy(nn.Module):
    """U-Net action-chunk policy conditioned on encoded observations; see the module docstring."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ChunkPolicyConfig]] = ChunkPolicyConfig

    def __init__(self, config: ChunkPolicyConfig, spec: Spec, stats: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            want, got = self.config_class.__name__, type(config).__name__
            raise TypeError(f"{type(self).__name__} needs a {want}, got {got}")
        if config.name != self.name:
            raise ValueError(f"name={config.name!r} does not match policy {self.name!r}")
        for key in (STATE, ACTION):
            if key not in spec:
                raise ValueError(f"spec: missing '{key}' (the policy needs it)")
        self.config = config
        self.spec = spec
        self.stats = stats_to_json(stats)
        self.state_dim = spec.state_dim
        self.action_dim = spec.action_dim
        self.image_keys = spec.image_keys
        self.action_norm = MinMaxNormalizer(self.stats, ACTION, self.action_dim)
        norm_cls = MeanStdNormalizer if config.state_norm == "mean_std" else MinMaxNormalizer
        self.state_norm = norm_cls(self.stats, STATE, self.state_dim)
        self.obs_encoder = ObsEncoder(
            self.state_dim, self.image_keys, config.n_obs_steps, config.state_feat_dim,
            config.image_feat_dim, config.image_channels, config.num_keypoints, config.n_groups,
        )
        self.net: nn.Module
        if config.backbone == "mlp":
            self.net = ConditionalMLP(self.action_dim, config.horizon, self.obs_encoder.out_dim, config.mlp_dims,
                                      config.time_embed_dim)
        else:
            self.net = ConditionalUnet1D(
                self.action_dim, self.obs_encoder.out_dim, config.down_dims, config.kernel_size,
                config.n_groups, config.time_embed_dim,
            )
        self.sampler = self.make_sampler()

    # -- to override -----------------------------------------------------------------------------------
    def make_sampler(self) -> Sampler:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _get(self, data: dict[str, Any], key: str, n_steps: int, where: str) -> Tensor:
        """data[key] as a tensor on the policy's device (no copy of the caller's array is modified)."""
        if key not in data:
            raise ValueError(f"{where}: missing key '{key}'")
        t = _as_tensor(data[key])
        feat_shape = tuple(self.spec[key].shape)
        if t.ndim != 2 + len(feat_shape) or t.shape[1] != n_steps or tuple(t.shape[2:]) != feat_shape:
            want = ", ".join(map(str, ("B", n_steps, *feat_shape)))
            raise ValueError(f"{where}: '{key}' has shape {tuple(t.shape)}, expected ({want})")
        return t.to(self.device)

    def encode_obs(self, obs: dict[str, Any], where: str = "obs") -> Tensor:
        """Raw obs {state (B, To, Ds), images (B, To, H, W, 3) uint8} -> global condition (B, To * Do)."""
        to = self.config.n_obs_steps
        state = self.state_norm(self._get(obs, STATE, to, where).float())
        images = {k: normalize_image(self._get(obs, k, to, where)) for k in self.image_keys}
        return self.obs_encoder(state, images)

    # -- training --------------------------------------------------------------------------------------
    def compute_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """Scalar denoising / velocity MSE over non-padded action steps.

        batch: "observation.state" (B, To, Ds), optional "observation.images.<cam>" (B, To, H, W, 3)
        uint8, "action" (B, T, Da) raw, optional "action_is_pad" (B, T) bool (True = padded, masked out).
        Extra keys are ignored; the batch is not modified.
        """
        cond = self.encode_obs(batch, "batch")
        x_data = self.action_norm(self._get(batch, ACTION, self.config.horizon, "batch").float())
        b = x_data.shape[0]
        dev = generator.device if generator is not None else x_data.device
        noise = torch.randn(x_data.shape, generator=generator, device=dev).to(x_data.device)
        t = self.sampler.sample_train_t(b, generator=generator, device=x_data.device)
        x_t = self.sampler.add_noise(x_data, noise, t)
        pred = self.net(x_t, self.sampler.model_time(t).to(x_data.device), cond)
        err = (pred - self.sampler.train_target(x_data, noise, t)).pow(2)  # (B, T, Da)
        if "action_is_pad" in batch:
            pad = _as_tensor(batch["action_is_pad"]).to(x_data.device)
            if pad.shape != x_data.shape[:2]:
                want = tuple(x_data.shape[:2])
                raise ValueError(f"batch: 'action_is_pad' has shape {tuple(pad.shape)}, expected {want}")
            w = (~pad.bool()).float().unsqueeze(-1)  # (B, T, 1)
            return (err * w).sum() / (w.sum() * self.action_dim).clamp_min(1.0)
        return err.mean()

    # -- inference -------------------------------------------------------------------------------------
    def _step_mean(self, x: Tensor, t: Tensor, t_next: Tensor, cond: Tensor) -> Tensor:
        """One deterministic sampler step x_t -> x_{t_next} (flow Euler, DDIM; DDPM without its noise)."""
        out = self.net(x, self.sampler.model_time(t).to(x.device).expand(x.shape[0]), cond)
        if isinstance(self.sampler, DDPMSampler):  # its posterior mean; the chain injects the noise
            return self.sampler.step(x, t, t_next, out, noise=torch.zeros_like(x))
        return self.sampler.step(x, t, t_next, out)

    def chain_actions(self, x: Tensor) -> Tensor:
        """A chain's final sample (B, T, Da), normalised -> the raw chunk `predict_chunk` returns (B, T', Da)."""
        # The training data lies in [-1, 1] after min-max normalisation; samples outside it (flow is
        # unbounded, out-of-distribution states push it further) are clipped to the data's range.
        actions = self.action_norm.inverse(x.clamp(-1.0, 1.0))
        return actions[:, self.config.n_obs_steps - 1:].float()

    def denoise_chain(self, obs: dict[str, Any], noise_std: NoiseStd = 0.0, *, generator: torch.Generator | None = None,
                      num_inference_steps: int | None = None, x_init: Tensor | None = None) -> DenoisingChain:
        """Run the sampler step by step with Gaussian noise `noise_std` injected after each step (see
        policies/common/chain.py). Gradients flow (wrap in `torch.no_grad()` to act). With zero noise and
        the same generator, `chain_actions(chain.samples[-1])` equals `predict_chunk(obs)` exactly."""
        k = self.config.num_inference_steps if num_inference_steps is None else int(num_inference_steps)
        cond = self.encode_obs(obs)
        b, dev = cond.shape[0], cond.device
        if x_init is None:
            gdev = generator.device if generator is not None else dev
            x_init = torch.randn((b, self.config.horizon, self.action_dim), generator=generator, device=gdev).to(dev)
        times = self.sampler.schedule(k)
        samples, means, stds = [x_init], [], []
        x = x_init
        for i, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
            mean = self._step_mean(x, t, t_next, cond)
            sigma = noise_at(noise_std, i, x, cond)
            if torch.any(sigma > 0):
                gdev = generator.device if generator is not None else dev
                eps = torch.randn(x.shape, generator=generator, device=gdev).to(dev)
                x = mean + sigma * eps
            else:
                x = mean
            samples.append(x)
            means.append(mean)
            stds.append(sigma)
        means_t, stds_t, samples_t = torch.stack(means), torch.stack(stds), torch.stack(samples)
        log_prob = sum(gaussian_log_prob(samples_t[i + 1], means_t[i], stds_t[i]) for i in range(k))
        return DenoisingChain(samples_t, means_t, stds_t, log_prob, cond)

    def chain_log_prob(self, obs: dict[str, Any] | None, samples: Tensor, noise_std: NoiseStd,
                       cond: Tensor | None = None, *, per_step: bool = False) -> Tensor:
        """(B,) log-probability of a recorded chain `samples` (K + 1, B, T, Da) under the current weights
        (and the current `noise_std`, e.g. a noise network); pass `obs` or its encoding `cond`.
        `per_step=True`: (K, B), each denoising step's log N(x_{k+1}; mu_k, sigma_k^2) (their sum is the total)."""
        cond = self.encode_obs(obs) if cond is None else cond
        k = samples.shape[0] - 1
        times = self.sampler.schedule(k)
        steps = []
        for i, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
            mean = self._step_mean(samples[i], t, t_next, cond)
            steps.append(gaussian_log_prob(samples[i + 1], mean, noise_at(noise_std, i, samples[i], cond)))
        per = torch.stack(steps)
        return per if per_step else per.sum(0)

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, Any], generator: torch.Generator | None = None,
                      seed: int | None = None, num_inference_steps: int | None = None,
                      noise: Tensor | None = None) -> Tensor:
        """Sample an action chunk for the current step onward.

        Args:
            obs: {"observation.state": (B, To, Ds), "observation.images.<cam>": (B, To, H, W, 3) uint8}
                in raw units, numpy or torch; not modified.
            generator: torch.Generator for the initial noise (and DDPM noise); reproducible sampling.
            seed: shortcut for a fresh CPU generator seeded with `seed` (ignored if `generator` is given).
            num_inference_steps: K for this call (default `config.num_inference_steps`).
            noise: (B, T, Da) initial noise to start from instead of drawing it (e.g. one generator
                per env, so an env's chunks do not depend on which other envs share the batch).
        Returns:
            (B, T - To + 1, Da) float32 tensor of raw-unit actions on the policy's device; index 0 is
            the action for the current (latest) observation.
        """
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        k = self.config.num_inference_steps if num_inference_steps is None else int(num_inference_steps)
        cond = self.encode_obs(obs)
        b, dev = cond.shape[0], cond.device
        shape = (b, self.config.horizon, self.action_dim)
        if noise is not None:
            if tuple(noise.shape) != shape:
                raise ValueError(f"predict_chunk: noise has shape {tuple(noise.shape)}, expected {shape}")
            x = noise.to(dev, torch.float32)
        else:
            gdev = generator.device if generator is not None else dev
            x = torch.randn(shape, generator=generator, device=gdev).to(dev)
        times = self.sampler.schedule(k)
        for t, t_next in zip(times[:-1], times[1:]):
            out = self.net(x, self.sampler.model_time(t).to(dev).expand(b), cond)
            x = self.sampler.step(x, t, t_next, out, generator=generator)
        return self.chain_actions(x)

    # -- checkpoints -----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write config.yaml, model.safetensors, stats.json, spec.json into `directory`."""
        return save_checkpoint(self, directory)
