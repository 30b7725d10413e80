"""The denoising chain step by step: what RL on the generative policy itself needs (ReinFlow, DPPO, RL-100).

`predict_chunk` runs K sampler steps from noise to an action chunk. `ChunkPolicy.denoise_chain` runs the
same K steps but keeps every intermediate sample and can inject Gaussian noise after each step, which
turns the deterministic chain (flow Euler steps, DDIM) into a Markov chain with a tractable
log-probability:

    x_0 ~ N(0, I)                                   (B, T, Da), normalised action space
    mu_k = step(x_k, t_k, t_{k+1}, net(x_k, t_k, obs))        k = 0 .. K-1 (the sampler's own update)
    x_{k+1} = mu_k + sigma_k * eps_k,   eps_k ~ N(0, I)
    log p(x_1..x_K | x_0, obs) = sum_k log N(x_{k+1}; mu_k, sigma_k^2)   (summed over T, Da)

With sigma = 0 the chain is exactly `predict_chunk` (same initial noise from the same generator, same
steps); its log-probability is then not defined and is reported as 0. `chain_log_prob` recomputes the
log-probability of a recorded chain under the current weights (the PPO ratio's numerator), and
`chain_actions` maps the chain's last sample to the raw action chunk `predict_chunk` would return.

`noise_std` is a number (every step), a tensor whose leading dim is the step, (K,) or (K, B, T, Da)
(per step, per sample; a 0-d tensor is every step),
or a callable `noise_std(k, x_k, cond) -> tensor broadcastable to (B, T, Da)`, e.g. ReinFlow's learned
noise network conditioned on the observation encoding `cond` (B, Dc) and the current sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

NoiseStd = float | Tensor | Callable[[int, Tensor, Tensor], Tensor]


@dataclass
class DenoisingChain:
    """A recorded chain (normalised action space). Shapes: K steps, B batch, T horizon, Da action dims."""

    samples: Tensor
    """(K + 1, B, T, Da): x_0 (the initial noise) .. x_K (the final sample)."""
    means: Tensor
    """(K, B, T, Da): mu_k, each step's deterministic update of x_k."""
    stds: Tensor
    """(K, B, T, Da): sigma_k, the noise injected after each step (0 = deterministic)."""
    log_prob: Tensor
    """(B,): log p(x_1..x_K | x_0, obs), 0 where every sigma is 0."""
    cond: Tensor
    """(B, Dc): the observation encoding the chain was conditioned on."""

    @property
    def n_steps(self) -> int:
        return self.means.shape[0]


def noise_at(noise_std: NoiseStd, k: int, x: Tensor, cond: Tensor) -> Tensor:
    """sigma_k broadcast to x's shape (B, T, Da)."""
    if callable(noise_std):
        sigma = noise_std(k, x, cond)
    elif isinstance(noise_std, Tensor):
        sigma = noise_std[k] if noise_std.ndim > 0 else noise_std  # a leading dim is the step
    else:
        sigma = torch.as_tensor(float(noise_std))
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if torch.any(sigma < 0):
        raise ValueError("noise_std must be >= 0")
    return sigma.expand_as(x)


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """sum over all but the first dim of log N(x; mean, std^2); entries with std == 0 contribute 0."""
    live = std > 0
    safe = torch.where(live, std, torch.ones_like(std))
    lp = -0.5 * ((x - mean) / safe) ** 2 - torch.log(safe) - 0.5 * math.log(2 * math.pi)
    return torch.where(live, lp, torch.zeros_like(lp)).flatten(1).sum(-1)
