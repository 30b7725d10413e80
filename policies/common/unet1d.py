"""1-D temporal conditional U-Net with FiLM (Chi et al., Diffusion Policy, 2023), written from scratch.

Input: a noisy action chunk x (B, T, Da), a time value t (B,) and a global condition c (B, Dc)
(observation features flattened over To). Output: (B, T, Da) (noise, clean sample or velocity).
Each residual block modulates its first conv's features with a per-channel scale and bias computed
from [time embedding, c] (FiLM). Down-sampling halves T at every level but the last, so T must be
divisible by 2 ** (len(down_dims) - 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SinusoidalEmbedding(nn.Module):
    """t (B,) float -> (B, dim) sin/cos features (Vaswani et al., 2017)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding dim={dim} must be even")
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        k = torch.arange(half, device=t.device, dtype=torch.float32)
        freqs = torch.exp(-math.log(10000.0) * k / (half - 1))
        arg = t.float()[:, None] * freqs[None, :]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class ConvNormMish(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish on (B, C, T)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, c_out),
            nn.Mish(),
        )


class FiLMResBlock(nn.Module):
    """Two ConvNormMish with FiLM (scale, bias) from the condition between them; 1x1 residual."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.conv1 = ConvNormMish(c_in, c_out, kernel_size, n_groups)
        self.conv2 = ConvNormMish(c_out, c_out, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x: (B, C_in, T), cond: (B, Dc) -> (B, C_out, T)."""
        h = self.conv1(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.conv2(h * (1 + scale) + bias)
        return h + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """Temporal U-Net over the action chunk, FiLM-conditioned on time embedding + global condition.

    Args:
        action_dim: Da.
        global_cond_dim: Dc, size of the flattened observation features (To * Do).
        down_dims: channels per level; len(down_dims) - 1 down-samplings of T.
        kernel_size: temporal conv kernel (odd).
        n_groups: GroupNorm groups (must divide every entry of down_dims).
        time_embed_dim: size of the time embedding.
    """

    def __init__(self, action_dim: int, global_cond_dim: int, down_dims: tuple[int, ...] = (64, 128, 256),
                 kernel_size: int = 5, n_groups: int = 8, time_embed_dim: int = 128) -> None:
        super().__init__()
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(time_embed_dim),
            nn.Linear(time_embed_dim, 4 * time_embed_dim),
            nn.Mish(),
            nn.Linear(4 * time_embed_dim, time_embed_dim),
        )
        cond_dim = time_embed_dim + global_cond_dim
        dims = [action_dim, *down_dims]
        n = len(down_dims)

        def block(a: int, b: int) -> FiLMResBlock:
            return FiLMResBlock(a, b, cond_dim, kernel_size, n_groups)

        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == n - 1
            self.down.append(nn.ModuleList([
                block(c_in, c_out), block(c_out, c_out),
                nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1),
            ]))
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]), block(down_dims[-1], down_dims[-1])])
        self.up = nn.ModuleList()
        rev = list(reversed(down_dims))
        for c_out, c_in in zip(rev[1:], rev[:-1]):
            self.up.append(nn.ModuleList([
                block(2 * c_in, c_out), block(c_out, c_out),
                nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1),
            ]))
        self.final = nn.Sequential(
            ConvNormMish(down_dims[0], down_dims[0], kernel_size, n_groups),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(self, x: Tensor, t: Tensor, global_cond: Tensor) -> Tensor:
        """x: (B, T, Da), t: (B,) or () time values, global_cond: (B, Dc) -> (B, T, Da)."""
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        cond = torch.cat([self.time_embed(t.to(x.device)), global_cond], dim=-1)
        h = x.transpose(1, 2)  # (B, Da, T)
        skips = []
        for b1, b2, down in self.down:
            h = b2(b1(h, cond), cond)
            skips.append(h)
            h = down(h)
        for b in self.mid:
            h = b(h, cond)
        for b1, b2, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(b2(b1(h, cond), cond))
        return self.final(h).transpose(1, 2)
