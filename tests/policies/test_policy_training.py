"""Smoke training (STYLE rule 14): on a synthetic task whose action chunk is a fixed function of the
state, ~200 Adam steps make the loss fall clearly and sampled chunks approach the targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from policy_fixtures import DS, TO, T, make_spec, make_stats, tiny_config

from robo.policies import EMA, make_policy

STEPS, BATCH = 200, 64
K = torch.arange(T, dtype=torch.float32)


def target_chunk(s: torch.Tensor) -> torch.Tensor:
    """(B, Ds) state -> (B, T, Da) actions, raw units (inside the stats' action range)."""
    a0 = s[:, :1] * torch.cos(K / 4) + 0.5 * s[:, 1:2]
    a1 = s[:, 2:3] - s[:, 3:4] * K / T
    return torch.stack([a0, a1], dim=-1)


def synthetic_batch(g: torch.Generator, b: int) -> dict[str, torch.Tensor]:
    s = torch.rand(b, DS, generator=g) * 2 - 1
    return {
        "observation.state": s[:, None].expand(b, TO, DS).contiguous(),
        "action": target_chunk(s),
        "action_is_pad": torch.zeros(b, T, dtype=torch.bool),
    }


def chunk_mse(policy, test: dict[str, torch.Tensor]) -> float:
    pred = policy.predict_chunk({"observation.state": test["observation.state"]}, seed=0)
    return (pred - test["action"][:, TO - 1:]).pow(2).mean().item()


@pytest.mark.parametrize("name", ["diffusion", "flow"])
def test_tiny_training_learns_the_state_to_chunk_map(name):
    torch.manual_seed(0)
    policy = make_policy(name, tiny_config(name, down_dims=(32, 64), time_embed_dim=64, state_feat_dim=32),
                         make_spec(), make_stats())
    ema = EMA(policy, decay=0.9)
    test = synthetic_batch(torch.Generator().manual_seed(123), 64)
    tgt = test["action"][:, TO - 1:]
    var = (tgt - tgt.mean(0)).pow(2).mean().item()  # MSE of the best constant chunk
    policy.eval()
    mse_before = chunk_mse(policy, test)
    policy.train()
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(STEPS):
        loss = policy.compute_loss(synthetic_batch(g, BATCH), generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update()
        losses.append(loss.item())
    policy.eval()
    mse_after = chunk_mse(policy, test)
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    print(f"{name}: loss {first:.3f} -> {last:.3f}; chunk MSE {mse_before:.3f} -> {mse_after:.3f} (var {var:.3f})")
    assert last < 0.25 * first
    assert mse_after < 0.3 * mse_before
    assert mse_after < 0.6 * var  # better than the best state-independent chunk: it uses the state
    ema.copy_to(policy)  # EMA weights are usable as is
    assert chunk_mse(policy, test) < mse_before
