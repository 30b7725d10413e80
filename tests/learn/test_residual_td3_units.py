"""Residual TD3 units: zero residual at init, TD targets against a hand-computed example, critic shapes."""

import numpy as np
import pytest
import torch

from robo.learn.residual_td3 import ResidualTD3Agent, ResidualTD3Config, actor_updates_after
from robo.policies.residual.model import CriticEnsemble, ResidualActor


def _cfg(**kw):
    base = dict(actor_hidden=32, critic_hidden=32, num_q=2, num_q_target=2, batch_size=4, eval_episodes=1,
                final_eval_episodes=1, buffer_size=10, target_noise_std=0.0, gamma=0.9)
    base.update(kw)
    return ResidualTD3Config(**base)


def test_residual_is_exactly_zero_at_init():
    actor = ResidualActor(5, 3, hidden=16, scale=0.1)
    obs, base = torch.randn(64, 5), torch.rand(64, 3) * 2 - 1
    assert torch.equal(actor(obs, base), torch.zeros(64, 3))
    # ... and the combined action is exactly the base
    assert torch.equal((base + actor(obs, base)).clamp(-1, 1), base)


def test_residual_is_bounded_by_scale():
    actor = ResidualActor(5, 3, hidden=16, scale=0.1, last_layer_init=1.0)
    with torch.no_grad():
        actor.net[-1].weight.fill_(10.0)
    r = actor(torch.randn(32, 5), torch.randn(32, 3))
    assert r.abs().max().item() <= 0.1 + 1e-6
    assert r.abs().max().item() > 0.09  # saturates near the bound


def test_td_target_hand_computed():
    agent = ResidualTD3Agent(_cfg(), obs_dim=2, act_dim=1, device=torch.device("cpu"))

    class FixedCritic(torch.nn.Module):  # head h returns sum(action) + h
        def forward(self, obs, base, action, heads=None):
            q = torch.stack([action.sum(-1) + h for h in range(2)])
            return q if heads is None else q[heads]

    agent.critic_target = FixedCritic()
    batch = {
        "next_obs": torch.zeros(2, 2), "next_base": torch.tensor([[0.5], [0.95]]),
        "reward": torch.tensor([1.0, 0.0]), "discount": torch.tensor([0.729, 0.0]),
    }
    y = agent.td_target(batch)
    # actor_target outputs exactly 0 (zero init), no smoothing noise: a' = clamp(next_base) ; min head = head 0
    assert y[0].item() == pytest.approx(1.0 + 0.729 * 0.5)
    assert y[1].item() == pytest.approx(0.0)


def test_critic_ensemble_heads_independent_and_update_reduces_loss():
    torch.manual_seed(0)
    critic = CriticEnsemble(3, 2, n_heads=4, hidden=32)
    q = critic(torch.randn(8, 3), torch.randn(8, 2), torch.randn(8, 2))
    assert q.shape == (4, 8)
    assert not torch.allclose(q[0], q[1])
    agent = ResidualTD3Agent(_cfg(num_q=4, critic_lr=1e-3), obs_dim=3, act_dim=2, device=torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(64, 3, generator=g), "base": torch.zeros(64, 2), "action": torch.zeros(64, 2),
             "reward": torch.ones(64), "next_obs": torch.randn(64, 3, generator=g), "next_base": torch.zeros(64, 2),
             "discount": torch.zeros(64)}
    first = agent.update_critic(batch)["losses/critic"]
    for _ in range(200):
        last = agent.update_critic(batch)["losses/critic"]
    assert last < 0.1 * first


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="action_scale"):
        ResidualTD3Config(action_scale=2.0)
    with pytest.raises(ValueError, match="num_q_target"):
        ResidualTD3Config(num_q=2, num_q_target=3)
    assert np.isclose(ResidualTD3Config().actor_lr, 1e-6)  # ResFiT default on the GPU profile


def test_residual_mask_combines_unused_and_frozen_dims():
    from types import SimpleNamespace

    from robo.learn.spine import env_info_of

    env = SimpleNamespace(obs_dim=3, act_dim=7, residual_mask=np.array([1, 1, 1, 1, 1, 0, 1], np.float32),
                          scaler=None)
    mask = lambda cfg: env_info_of(env, cfg).residual_mask.tolist()  # noqa: E731
    assert mask(_cfg()) == [1, 1, 1, 1, 1, 0, 1]
    assert mask(_cfg(frozen_action_dims=[3, 4])) == [1, 1, 1, 0, 0, 0, 1]
    assert mask(_cfg(mask_unused_dims=False, frozen_action_dims=[0])) == [0, 1, 1, 1, 1, 1, 1]
    assert env.residual_mask[5] == 0  # the env's own mask is not modified
    with pytest.raises(ValueError, match="frozen_action_dims: 7"):
        env_info_of(env, _cfg(frozen_action_dims=[7]))


def test_critic_evaluates_a_subset_of_heads_as_the_full_ensemble_does():
    torch.manual_seed(0)
    critic = CriticEnsemble(3, 2, n_heads=5, hidden=16)
    obs, base, action = torch.randn(8, 3), torch.randn(8, 2), torch.randn(8, 2)
    heads = torch.tensor([3, 0])
    torch.testing.assert_close(critic(obs, base, action, heads), critic(obs, base, action)[heads])


@pytest.mark.parametrize(("rate", "expected"), [(0.25, [0, 0, 0, 1, 0, 0, 0, 1]), (0.5, [0, 1, 0, 1, 0, 1, 0, 1]),
                                                (1.0, [1] * 8), (2.0, [2] * 8), (0.0, [0] * 8)])
def test_actor_updates_follow_their_rate_per_critic_update(rate, expected):
    assert [actor_updates_after(n, rate) for n in range(1, 9)] == expected
    # over any long run the count is the rate times the critic updates (no drift from rounding)
    assert sum(actor_updates_after(n, rate) for n in range(1, 3001)) == int(3000 * rate)
