"""Stateless samplers: the noise/time schedule of a generative action head, without hidden state.

Every sampler exposes the same five pure functions, so the denoising loop stays visible in the policy:

    times = sampler.schedule(n)                      # (n + 1,) times, from pure noise to data
    x = noise                                        # (B, T, Da) ~ N(0, I)
    for t, t_next in zip(times[:-1], times[1:]):
        x = sampler.step(x, t, t_next, model(x, sampler.model_time(t)), generator=g)

Training uses the other three:

    t = sampler.sample_train_t(B, generator=g)       # (B,) times
    x_t = sampler.add_noise(x_data, noise, t)        # (B, T, Da)
    target = sampler.train_target(x_data, noise, t)  # what the network regresses

`t` may be a Python number, a 0-d tensor or a per-sample (B,) tensor everywhere. Samplers never keep a
cursor (unlike diffusers' scheduler objects, whose `step` depends on an earlier `set_timesteps` call);
the diffusion samplers take their noise schedule (`alphas_cumprod`) from diffusers' `DDPMScheduler`.

Time conventions:
- diffusion (DDPM, DDIM): integer training timesteps 0 .. N-1, noise at high t; the last time of a
  schedule is -1, meaning "clean" (alpha_bar = 1, diffusers' `set_alpha_to_one`).
- flow (rectified flow): continuous t in [0, 1], noise x0 at t = 0, data x1 at t = 1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Number = float | int | Tensor


def _per_sample(t: Number, x: Tensor) -> Tensor:
    """Broadcast a scalar or (B,) time to shape (B, 1, ..., 1) matching `x` (B, ...), as float64."""
    t = torch.as_tensor(t, device=x.device)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"t has shape {tuple(t.shape)}, expected () or ({x.shape[0]},)")
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    dev = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)


class DiffusionSampler:
    """Shared part of DDPM/DDIM: alpha_bar table, noising, x0 prediction and training targets.

    Args:
        num_train_timesteps: N, training timesteps 0 .. N-1.
        beta_schedule: diffusers beta schedule name ("squaredcos_cap_v2", "linear", ...).
        prediction_type: "epsilon" (network predicts the noise) or "sample" (predicts x0).
        clip_sample: clamp the predicted x0 to [-clip_sample_range, clip_sample_range] when stepping.
    """

    def __init__(
        self,
        num_train_timesteps: int = 100,
        beta_schedule: str = "squaredcos_cap_v2",
        prediction_type: Literal["epsilon", "sample"] = "epsilon",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        from diffusers import DDPMScheduler

        ddpm = DDPMScheduler(
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            beta_start=beta_start,
            beta_end=beta_end,
            prediction_type=prediction_type,
            clip_sample=clip_sample,
            clip_sample_range=clip_sample_range,
        )
        self.num_train_timesteps = num_train_timesteps
        self.prediction_type = prediction_type
        self.clip_sample = clip_sample
        self.clip_sample_range = clip_sample_range
        # (N,) float64 table; index -1 (appended at the end) is the clean endpoint alpha_bar = 1.
        self.alphas_cumprod = torch.cat([ddpm.alphas_cumprod.double(), torch.ones(1, dtype=torch.float64)])

    # -- schedule -------------------------------------------------------------------------------------
    def schedule(self, n: int) -> Tensor:
        """(n + 1,) int64 timesteps, "leading" spacing as diffusers' DDIM: [N - N/n, ..., 0, -1]."""
        if not 1 <= n <= self.num_train_timesteps:
            raise ValueError(f"n={n} is out of range [1, {self.num_train_timesteps}]")
        ratio = self.num_train_timesteps // n
        ts = torch.arange(n - 1, -1, -1, dtype=torch.int64) * ratio
        return torch.cat([ts, torch.tensor([-1])])

    def model_time(self, t: Number) -> Tensor:
        """Time value fed to the network's timestep embedding (the integer timestep itself)."""
        return torch.as_tensor(t).float()

    def _abar(self, t: Number, x: Tensor) -> Tensor:
        """alpha_bar(t) broadcast to `x`; t = -1 gives 1 (clean). Returns float64 (B, 1, ..., 1)."""
        idx = _per_sample(t, x).long()
        table = self.alphas_cumprod.to(x.device)
        return table[idx]

    # -- training -------------------------------------------------------------------------------------
    def sample_train_t(self, batch_size: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> Tensor:
        """(B,) int64 timesteps uniform in [0, N)."""
        dev = generator.device if generator is not None else device
        t = torch.randint(0, self.num_train_timesteps, (batch_size,), generator=generator, device=dev)
        return t.to(device)

    def add_noise(self, x_data: Tensor, noise: Tensor, t: Number) -> Tensor:
        """x_t = sqrt(abar) x_data + sqrt(1 - abar) noise. Shapes (B, ...) -> (B, ...)."""
        abar = self._abar(t, x_data)
        return (abar.sqrt() * x_data + (1 - abar).sqrt() * noise).to(x_data.dtype)

    def train_target(self, x_data: Tensor, noise: Tensor, t: Number) -> Tensor:
        """Regression target of the network: the noise (epsilon) or the clean sample."""
        return noise if self.prediction_type == "epsilon" else x_data

    # -- sampling helpers -----------------------------------------------------------------------------
    def predict_x0_eps(self, x: Tensor, t: Number, model_out: Tensor) -> tuple[Tensor, Tensor]:
        """(x0_hat, eps_hat) from the network output at time t; x0_hat clipped if `clip_sample`."""
        abar = self._abar(t, x)
        xd, md = x.double(), model_out.double()
        if self.prediction_type == "epsilon":
            eps = md
            x0 = (xd - (1 - abar).sqrt() * md) / abar.sqrt()
        else:
            x0 = md
            eps = (xd - abar.sqrt() * x0) / (1 - abar).sqrt().clamp_min(1e-12)
        if self.clip_sample:  # as diffusers (use_clipped_model_output=False): eps is left unclipped
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0, eps


class DDIMSampler(DiffusionSampler):
    """Deterministic DDIM (eta = 0): x_next = sqrt(abar') x0_hat + sqrt(1 - abar') eps_hat."""

    def step(self, x: Tensor, t: Number, t_next: Number, model_out: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        """One step t -> t_next (t_next < t; -1 = clean). x, model_out: (B, T, Da) -> (B, T, Da)."""
        x0, eps = self.predict_x0_eps(x, t, model_out)
        abar_next = self._abar(t_next, x)
        return (abar_next.sqrt() * x0 + (1 - abar_next).sqrt() * eps).to(x.dtype)


class DDPMSampler(DiffusionSampler):
    """Ancestral DDPM: samples x_next ~ q(x_{t_next} | x_t, x0_hat); valid for any t_next < t.

    With t_next = t - 1 this is the DDPM posterior of Ho et al. (2020) ("fixed_small" variance);
    with skipped steps it uses the same posterior between the two alpha_bar values.
    """

    def step(self, x: Tensor, t: Number, t_next: Number, model_out: Tensor,
             generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """One stochastic step t -> t_next. x, model_out: (B, T, Da) -> (B, T, Da).

        `noise` (B, T, Da) ~ N(0, I) may be given explicitly; otherwise it is drawn from `generator`.
        """
        x0, _ = self.predict_x0_eps(x, t, model_out)
        abar, abar_next = self._abar(t, x), self._abar(t_next, x)
        alpha = abar / abar_next  # alpha of the (possibly multi-step) transition t_next -> t
        beta = 1 - alpha
        coef_x0 = abar_next.sqrt() * beta / (1 - abar)
        coef_xt = alpha.sqrt() * (1 - abar_next) / (1 - abar)
        mean = coef_x0 * x0 + coef_xt * x.double()
        var = (1 - abar_next) / (1 - abar) * beta
        z = (_randn_like(x, generator) if noise is None else noise).double()
        return (mean + var.clamp_min(0).sqrt() * z).to(x.dtype)


class FlowEulerSampler:
    """Rectified flow: x_t = (1 - t) x0 + t x1 (x0 ~ N(0, I) noise, x1 data), velocity v = x1 - x0.

    Args:
        t_sampling: training-time distribution of t: "uniform" on [0, 1), or "beta": t = 1 - u^(1/a)
            with u uniform, i.e. 1 - Beta(a, 1), which puts more weight on noisy (small) t.
        beta_alpha: the `a` of the "beta" distribution (> 0).
        time_scale: multiplier from t in [0, 1] to the network's timestep embedding input.
    """

    def __init__(self, t_sampling: Literal["uniform", "beta"] = "uniform", beta_alpha: float = 1.5,
                 time_scale: float = 100.0) -> None:
        self.t_sampling = t_sampling
        self.beta_alpha = beta_alpha
        self.time_scale = time_scale

    def schedule(self, n: int) -> Tensor:
        """(n + 1,) float times 0, 1/n, ..., 1 (noise -> data)."""
        if n < 1:
            raise ValueError(f"n={n} is out of range [1, inf]")
        return torch.linspace(0.0, 1.0, n + 1)

    def model_time(self, t: Number) -> Tensor:
        return torch.as_tensor(t).float() * self.time_scale

    def sample_train_t(self, batch_size: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> Tensor:
        """(B,) float times in [0, 1)."""
        dev = generator.device if generator is not None else device
        u = torch.rand(batch_size, generator=generator, device=dev).to(device)
        if self.t_sampling == "beta":
            return (1 - u.pow(1.0 / self.beta_alpha)).clamp(0.0, 1.0 - 1e-4)
        return u

    def add_noise(self, x_data: Tensor, noise: Tensor, t: Number) -> Tensor:
        """x_t = (1 - t) noise + t x_data. Shapes (B, ...) -> (B, ...)."""
        tt = _per_sample(t, x_data).to(x_data.dtype)
        return (1 - tt) * noise + tt * x_data

    def train_target(self, x_data: Tensor, noise: Tensor, t: Number) -> Tensor:
        """Velocity target x1 - x0 = x_data - noise."""
        return x_data - noise

    def step(self, x: Tensor, t: Number, t_next: Number, model_out: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        """Euler step x + (t_next - t) v. x, model_out: (B, T, Da) -> (B, T, Da)."""
        dt = (_per_sample(t_next, x) - _per_sample(t, x)).to(x.dtype)
        return x + dt * model_out


Sampler = DDIMSampler | DDPMSampler | FlowEulerSampler
