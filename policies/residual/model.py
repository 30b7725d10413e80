"""Residual actor and critic-ensemble networks (ResFiT-style), shared by residual TD3, PPO and SAC.

Shapes: B batch, H critic heads, Do observation features, Da action dims. All actions are in the
normalised [-1, 1] space of the environment's action bounds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, hidden: int, n_layers: int, out_dim: int, layer_norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(d, hidden)]
        if layer_norm:
            layers += [nn.LayerNorm(hidden)]
        layers += [nn.ReLU()]
        d = hidden
    layers += [nn.Linear(d, out_dim)]
    return nn.Sequential(*layers)


class ResidualActor(nn.Module):
    """Deterministic residual: `tanh(f([obs, base])) * scale`, last layer zero-initialised.

    At initialisation the output is exactly 0, so base + residual == base (training starts at the base).
    forward(obs (B, Do), base (B, Da)) -> residual (B, Da) in [-scale, scale], times `mask` (Da,): a
    0 in the mask switches the residual off for that action dimension.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, n_layers: int = 2, scale: float = 0.1,
                 layer_norm: bool = True, last_layer_init: float = 0.0):
        super().__init__()
        self.scale = scale
        self.net = mlp(obs_dim + act_dim, hidden, n_layers, act_dim, layer_norm)
        self.register_buffer("mask", torch.ones(act_dim))
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.mul_(last_layer_init)
            last.bias.zero_()

    def forward(self, obs: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([obs, base], dim=-1))) * self.scale * self.mask


class EnsembleLinear(nn.Module):
    """H independent linear layers evaluated with one batched matmul: (H, B, in) -> (H, B, out)."""

    def __init__(self, n_heads: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_heads, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(n_heads, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        """`heads` (H',) evaluates only those heads: x is (H', B, in)."""
        if heads is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias.index_select(0, heads), x, self.weight.index_select(0, heads))


class CriticEnsemble(nn.Module):
    """H Q-heads (LayerNorm MLPs) on `[obs, base, action]`; forward -> (H, B).

    Q is taken on the combined, clamped action (what the env executed), conditioned on the base
    action so the critic knows where the residual started from.
    """

    def __init__(self, obs_dim: int, act_dim: int, n_heads: int = 10, hidden: int = 256, n_layers: int = 2,
                 layer_norm: bool = True):
        super().__init__()
        self.n_heads = n_heads
        self.layer_norm = layer_norm
        dims = [obs_dim + 2 * act_dim] + [hidden] * n_layers
        self.hidden = nn.ModuleList(EnsembleLinear(n_heads, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norm_scale = nn.ParameterList(nn.Parameter(torch.ones(n_heads, 1, hidden)) for _ in range(n_layers))
        self.norm_bias = nn.ParameterList(nn.Parameter(torch.zeros(n_heads, 1, hidden)) for _ in range(n_layers))
        self.out = EnsembleLinear(n_heads, hidden, 1)

    def forward(self, obs: torch.Tensor, base: torch.Tensor, action: torch.Tensor,
                heads: torch.Tensor | None = None) -> torch.Tensor:
        """Q of every head (H, B), or of `heads` only (H', B): a TD target's random subset costs only its heads."""
        n = self.n_heads if heads is None else len(heads)
        x = torch.cat([obs, base, action], dim=-1).unsqueeze(0).expand(n, -1, -1)
        for layer, g, b in zip(self.hidden, self.norm_scale, self.norm_bias):
            x = layer(x, heads)
            if self.layer_norm:
                if heads is not None:
                    g, b = g.index_select(0, heads), b.index_select(0, heads)
                x = F.layer_norm(x, x.shape[-1:]) * g + b
            x = F.relu(x)
        return self.out(x, heads).squeeze(-1)
