"""The denoising-chain hook (ChunkPolicy.denoise_chain / chain_log_prob / chain_actions), for flow (K Euler
steps, K = 1 and 4) and diffusion (DDIM): zero noise reproduces `predict_chunk`; the log-probability
is the hand-computed Gaussian chain's; recomputing it under the same weights gives the same number."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))
from policy_fixtures import make_obs, make_spec, make_stats, tiny_config  # noqa: E402

from robo.policies import make_policy  # noqa: E402

CASES = [("flow", 1), ("flow", 4), ("diffusion", 10)]


def _policy(name: str, k: int):
    torch.manual_seed(0)
    cfg = tiny_config(name, num_inference_steps=k, backbone="mlp", mlp_dims=(32, 32))
    policy = make_policy(name, cfg, make_spec(), make_stats())
    with torch.no_grad():  # a non-trivial network: random last layers, so every step moves the sample
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy.eval()


@pytest.mark.parametrize("name, k", CASES)
def test_zero_noise_reproduces_predict_chunk(name, k):
    policy, obs = _policy(name, k), make_obs(b=3)
    expected = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        chain = policy.denoise_chain(obs, 0.0, generator=torch.Generator().manual_seed(7))
    got = policy.chain_actions(chain.samples[-1])
    assert chain.samples.shape == (k + 1, 3, policy.config.horizon, policy.action_dim)
    assert chain.means.shape == chain.stds.shape == (k, 3, policy.config.horizon, policy.action_dim)
    assert torch.allclose(got, expected, atol=1e-6), (got - expected).abs().max()
    assert torch.equal(chain.log_prob, torch.zeros(3))  # deterministic: no density, reported as 0
    assert torch.equal(chain.samples[1:], chain.means)


@pytest.mark.parametrize("name, k", CASES)
def test_log_prob_is_the_hand_computed_gaussian_chain(name, k):
    policy, obs = _policy(name, k), make_obs(b=2, seed=1)
    sigma = torch.linspace(0.05, 0.2, k)  # per-step noise
    with torch.no_grad():
        chain = policy.denoise_chain(obs, sigma, generator=torch.Generator().manual_seed(3))
    d = policy.config.horizon * policy.action_dim
    by_hand = torch.zeros(2)
    for i in range(k):
        eps = (chain.samples[i + 1] - chain.means[i]) / sigma[i]
        by_hand += (-0.5 * eps.pow(2)).flatten(1).sum(-1) - d * (math.log(sigma[i]) + 0.5 * math.log(2 * math.pi))
    assert torch.allclose(chain.log_prob, by_hand, rtol=1e-5, atol=1e-4)
    # recomputed under the same weights (the PPO ratio's numerator at the first minibatch): same number
    with torch.no_grad():
        again = policy.chain_log_prob(obs, chain.samples, sigma)
    assert torch.allclose(again, chain.log_prob, rtol=1e-5, atol=1e-4)
    # and it depends on the weights through the means, with gradients
    lp = policy.chain_log_prob(obs, chain.samples, sigma)
    lp.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


def test_callable_noise_sees_the_step_the_sample_and_the_observation():
    policy, obs = _policy("flow", 2), make_obs(b=2)
    seen = []

    def noise(k, x, cond):
        seen.append((k, tuple(x.shape), tuple(cond.shape)))
        return torch.full_like(x, 0.1)

    with torch.no_grad():
        chain = policy.denoise_chain(obs, noise, generator=torch.Generator().manual_seed(0))
    assert [s[0] for s in seen] == [0, 1] and seen[0][1] == tuple(chain.samples[0].shape)
    assert torch.all(chain.stds == 0.1) and torch.all(chain.log_prob != 0)
    with pytest.raises(ValueError, match="noise_std"):
        policy.denoise_chain(obs, -0.1)
