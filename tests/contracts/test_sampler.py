"""Conformance test for stateless samplers (STYLE rule 9/13): DDPM, DDIM and flow-Euler.

A sampler's test subclasses `SamplerContract` and defines `make_sampler()` and `exact_model_out()`,
the output of a perfect network when the data distribution is a single point `x_data`.
"""

from __future__ import annotations

import pytest
import torch

from robo.policies.common.samplers import DDIMSampler, DDPMSampler, FlowEulerSampler


@pytest.fixture(autouse=True)
def _one_torch_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


SHAPE = (3, 8, 2)  # (B, T, Da)


class SamplerContract:
    """Subclass, set `stochastic`, and define `make_sampler` and `exact_model_out`."""

    stochastic = False
    n_steps = (1, 4, 10)

    def make_sampler(self):
        raise NotImplementedError

    def exact_model_out(self, sampler, x_t: torch.Tensor, t, x_data: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def data() -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        x_data = torch.rand(SHAPE, generator=g) * 1.6 - 0.8  # inside the clip range
        x = torch.randn(SHAPE, generator=g)
        return x_data, x

    def run(self, sampler, x: torch.Tensor, x_data: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        times = sampler.schedule(n)
        for t, t_next in zip(times[:-1], times[1:]):
            x = sampler.step(x, t, t_next, self.exact_model_out(sampler, x, t, x_data), generator=g)
        return x

    # -- contract ----------------------------------------------------------------------------------
    def test_schedule_is_strictly_monotone_with_n_plus_one_times(self):
        s = self.make_sampler()
        for n in self.n_steps:
            times = s.schedule(n)
            assert times.shape == (n + 1,)
            d = times[1:] - times[:-1]
            assert torch.all(d > 0) or torch.all(d < 0), times

    def test_step_keeps_shape_and_dtype_and_does_not_mutate(self):
        s = self.make_sampler()
        x_data, x = self.data()
        x0 = x.clone()
        times = s.schedule(4)
        out = torch.randn(SHAPE)
        y = s.step(x, times[0], times[1], out, generator=torch.Generator().manual_seed(0))
        assert y.shape == SHAPE and y.dtype == torch.float32
        assert torch.equal(x, x0)
        assert torch.isfinite(y).all()

    def test_step_is_deterministic_given_generator_seed(self):
        s = self.make_sampler()
        _, x = self.data()
        times = s.schedule(4)
        out = torch.randn(SHAPE)
        a = s.step(x, times[1], times[2], out, generator=torch.Generator().manual_seed(7))
        b = s.step(x, times[1], times[2], out, generator=torch.Generator().manual_seed(7))
        c = s.step(x, times[1], times[2], out, generator=torch.Generator().manual_seed(8))
        assert torch.equal(a, b)
        assert (not torch.equal(a, c)) == self.stochastic

    def test_per_sample_t_matches_scalar_t(self):
        s = self.make_sampler()
        _, x = self.data()
        times = s.schedule(4)
        out = torch.randn(SHAPE)
        t = torch.stack([times[0], times[1], times[2]])
        t_next = torch.stack([times[1], times[2], times[4]])
        # A stochastic sampler takes its noise explicitly here, so rows can be compared one by one.
        z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
        kw = (lambda i: {"noise": z if i is None else z[i:i + 1]}) if self.stochastic else (lambda i: {})
        batched = s.step(x, t, t_next, out, **kw(None))
        for i in range(SHAPE[0]):
            one = s.step(x[i:i + 1], t[i], t_next[i], out[i:i + 1], **kw(i))
            torch.testing.assert_close(batched[i:i + 1], one, rtol=0, atol=1e-6)

    def test_exact_model_equals_training_target(self):
        s = self.make_sampler()
        x_data, noise = self.data()
        t = s.sample_train_t(SHAPE[0], generator=torch.Generator().manual_seed(1))
        assert t.shape == (SHAPE[0],)
        x_t = s.add_noise(x_data, noise, t)
        torch.testing.assert_close(
            self.exact_model_out(s, x_t, t, x_data), s.train_target(x_data, noise, t), rtol=1e-4, atol=1e-4
        )

    def test_exact_model_recovers_data(self):
        s = self.make_sampler()
        x_data, x = self.data()
        for n in self.n_steps:
            torch.testing.assert_close(self.run(s, x, x_data, n), x_data, rtol=0, atol=1e-5)


# -- diffusion ---------------------------------------------------------------------------------------
def _eps_oracle(sampler, x_t, t, x_data):
    idx = torch.as_tensor(t).long().expand(x_t.shape[0])
    abar = sampler.alphas_cumprod[idx].reshape(-1, 1, 1)
    if sampler.prediction_type == "sample":
        return x_data
    return ((x_t.double() - abar.sqrt() * x_data.double()) / (1 - abar).sqrt()).float()


class TestDDIM(SamplerContract):
    def make_sampler(self):
        return DDIMSampler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")

    def exact_model_out(self, sampler, x_t, t, x_data):
        return _eps_oracle(sampler, x_t, t, x_data)

    def test_schedule_matches_diffusers_ddim(self):
        from diffusers import DDIMScheduler

        ref = DDIMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
        ref.set_timesteps(10)
        assert self.make_sampler().schedule(10)[:-1].tolist() == ref.timesteps.tolist()

    def test_step_matches_diffusers_ddim(self):
        from diffusers import DDIMScheduler

        ref = DDIMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True)
        ref.set_timesteps(10)
        s = self.make_sampler()
        times = s.schedule(10)
        _, x = self.data()
        out = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
        for i in (0, 5, 9):  # first, middle, last (t_next = -1: alpha_bar = 1)
            want = ref.step(out, int(times[i]), x).prev_sample
            torch.testing.assert_close(s.step(x, times[i], times[i + 1], out), want, rtol=1e-5, atol=1e-5)


class TestDDIMSamplePrediction(TestDDIM):
    def make_sampler(self):
        return DDIMSampler(num_train_timesteps=100, prediction_type="sample")

    def test_step_matches_diffusers_ddim(self):
        from diffusers import DDIMScheduler

        ref = DDIMScheduler(
            num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", prediction_type="sample"
        )
        ref.set_timesteps(10)
        s = self.make_sampler()
        times = s.schedule(10)
        _, x = self.data()
        out = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
        for i in (0, 5, 9):
            want = ref.step(out, int(times[i]), x).prev_sample
            torch.testing.assert_close(s.step(x, times[i], times[i + 1], out), want, rtol=1e-5, atol=1e-5)


class TestDDPM(SamplerContract):
    stochastic = True
    n_steps = (1, 4, 100)

    def make_sampler(self):
        return DDPMSampler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")

    def exact_model_out(self, sampler, x_t, t, x_data):
        return _eps_oracle(sampler, x_t, t, x_data)

    def test_step_matches_diffusers_ddpm(self):
        from diffusers import DDPMScheduler

        ref = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True)
        ref.set_timesteps(100)
        s = self.make_sampler()
        _, x = self.data()
        out = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
        for t in (99, 50, 1):
            want = ref.step(out, t, x, generator=torch.Generator().manual_seed(5)).prev_sample
            got = s.step(x, t, t - 1, out, generator=torch.Generator().manual_seed(5))
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


# -- flow ---------------------------------------------------------------------------------------------
class TestFlowEuler(SamplerContract):
    def make_sampler(self):
        return FlowEulerSampler()

    def exact_model_out(self, sampler, x_t, t, x_data):
        tt = torch.as_tensor(t, dtype=torch.float64).expand(x_t.shape[0]).reshape(-1, 1, 1)
        return ((x_data.double() - x_t.double()) / (1 - tt)).float()


class TestFlowEulerBetaTime(TestFlowEuler):
    def make_sampler(self):
        return FlowEulerSampler(t_sampling="beta", beta_alpha=1.5)

    def test_beta_times_favour_noise(self):
        t = self.make_sampler().sample_train_t(20000, generator=torch.Generator().manual_seed(0))
        assert 0 <= t.min() and t.max() < 1
        assert t.mean() < 0.45  # E[1 - Beta(1.5, 1)] = 0.4 (uniform: 0.5)
