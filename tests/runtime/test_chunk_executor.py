"""ChunkExecutor: sync horizon, obs history, async latency compensation and blending."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from robo.runtime.chunk_executor import ChunkExecutor

DA = 2


def traj(t: np.ndarray | float) -> np.ndarray:
    """A smooth reference trajectory in action space, (..., Da)."""
    t = np.asarray(t, dtype=np.float64)
    return np.stack([np.sin(0.1 * t), np.cos(0.07 * t)], axis=-1).astype(np.float32)


class TrajSource:
    """Reads the step index from obs and returns the reference trajectory from that step on.

    `offsets[j]` is added to the j-th chunk (policies disagree between chunks); `delay_s` sleeps.
    """

    def __init__(self, horizon: int = 16, offsets: list[float] | None = None, delay_s: float = 0.0) -> None:
        self.horizon = horizon
        self.offsets = offsets
        self.delay_s = delay_s
        self.calls: list[dict[str, np.ndarray]] = []
        self.lock = threading.Lock()

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        with self.lock:
            self.calls.append({k: v.copy() for k, v in obs.items()})
            j = len(self.calls) - 1
        if self.delay_s:
            time.sleep(self.delay_s)
        t0 = float(obs["observation.state"][0, -1, 0])
        chunk = traj(t0 + np.arange(self.horizon))
        if self.offsets is not None:
            chunk = chunk + self.offsets[j % len(self.offsets)]
        return chunk[None]


def obs_at(k: int) -> dict[str, np.ndarray]:
    return {"observation.state": np.array([k, 0.0], np.float32), "task": "ignored"}  # type: ignore[dict-item]


def run(ex: ChunkExecutor, n: int, *, dt: float = 0.0) -> np.ndarray:
    out = []
    for k in range(n):
        t_next = time.perf_counter() + dt
        out.append(ex.act(obs_at(k)))
        if dt:
            time.sleep(max(0.0, t_next - time.perf_counter()))
    return np.stack(out)


def test_sync_executes_horizon_then_predicts_again():
    src = TrajSource(horizon=16)
    ex = ChunkExecutor(src, n_action_steps=8, mode="sync")
    actions = run(ex, 20)
    assert len(src.calls) == 3  # steps 0, 8, 16
    assert [float(c["observation.state"][0, -1, 0]) for c in src.calls] == [0.0, 8.0, 16.0]
    np.testing.assert_allclose(actions, traj(np.arange(20)), atol=1e-6)
    assert actions.shape == (20, DA) and actions.dtype == np.float32


def test_sync_is_deterministic_and_reset_clears_queue():
    src = TrajSource(horizon=10, offsets=[0.0, 0.5])
    ex = ChunkExecutor(src, n_action_steps=4, mode="sync")
    first = run(ex, 6)
    ex.reset()
    second = run(ex, 6)
    # after reset the first chunk is predicted again at step 0 (call 3 gets offset 0.0 again)
    np.testing.assert_array_equal(first, second)
    assert len(src.calls) == 4


def test_obs_history_padded_at_start_then_sliding():
    src = TrajSource(horizon=4)
    ex = ChunkExecutor(src, n_action_steps=1, mode="sync", n_obs_steps=3)
    run(ex, 3)
    assert src.calls[0]["observation.state"].shape == (1, 3, 2)
    np.testing.assert_array_equal(src.calls[0]["observation.state"][0, :, 0], [0, 0, 0])
    np.testing.assert_array_equal(src.calls[2]["observation.state"][0, :, 0], [0, 1, 2])
    assert "task" not in src.calls[0]  # non-array entries are not sent to the policy


def test_n_obs_steps_read_from_policy_cfg():
    class Cfg:
        n_obs_steps = 2

    src = TrajSource()
    src.cfg = Cfg()  # type: ignore[attr-defined]
    assert ChunkExecutor(src, n_action_steps=4).n_obs_steps == 2


@pytest.mark.parametrize("latency", [1, 3, 5])
def test_async_simulated_latency_drops_stale_prefix_exactly(latency):
    src = TrajSource(horizon=16)
    ex = ChunkExecutor(src, n_action_steps=8, mode="async", simulate_latency_steps=latency, blend_steps=2)
    actions = run(ex, 60)
    # every executed action is the reference at its own step: the stale prefix was skipped exactly
    np.testing.assert_allclose(actions, traj(np.arange(60)), atol=1e-6)
    assert ex.stats.n_starved == 0
    assert list(ex.stats.latency_steps)[1:] == [latency] * (ex.stats.n_chunks - 1)
    assert ex.stats.n_stale_dropped == latency * (ex.stats.n_chunks - 1)


def test_async_without_prefix_drop_would_be_misaligned():
    """Guard: the alignment test above can fail — a source whose chunks ignore the obs step is off."""
    src = TrajSource(horizon=16)
    ex = ChunkExecutor(src, n_action_steps=8, mode="async", simulate_latency_steps=3)
    actions = []
    for k in range(30):
        actions.append(ex.act(obs_at(0 if k < 100 else k)))  # every chunk claims step 0
    assert np.abs(np.stack(actions) - traj(np.arange(30))).max() > 0.1


def max_jump(actions: np.ndarray) -> float:
    return float(np.abs(np.diff(actions, axis=0)).max())


def test_async_blending_removes_seams_between_disagreeing_chunks():
    offsets = [0.0, 0.3, -0.3, 0.3, -0.3, 0.3, -0.3, 0.3, -0.3, 0.3]
    smooth_step = max_jump(traj(np.arange(80)))  # < 0.1 per step
    seams = ChunkExecutor(TrajSource(16, offsets), 8, mode="async", simulate_latency_steps=2, blend_steps=0)
    blended = ChunkExecutor(TrajSource(16, offsets), 8, mode="async", simulate_latency_steps=2, blend_steps=5)
    jump_seams = max_jump(run(seams, 80))
    jump_blended = max_jump(run(blended, 80))
    assert jump_seams > 0.55  # a 0.6 jump between chunks with offsets +0.3 / -0.3
    assert jump_blended < 0.6 / 6 + smooth_step + 1e-6  # cross-fade over 5 steps: 1/6 of the gap per step
    assert blended.stats.n_blended > 0


def test_async_starves_then_recovers_when_chunk_later_than_tail():
    src = TrajSource(horizon=8)
    ex = ChunkExecutor(src, n_action_steps=8, mode="async", simulate_latency_steps=12, request_ahead_steps=2)
    actions = run(ex, 40)
    assert ex.stats.n_starved > 0
    np.testing.assert_allclose(actions, traj(np.arange(40)), atol=1e-6)


def test_async_real_thread_delayed_source_is_seamless():
    """A 60 ms policy at 50 Hz control (3 steps of latency), run in real time."""
    src = TrajSource(horizon=16, delay_s=0.06)
    ex = ChunkExecutor(src, n_action_steps=10, mode="async", control_hz=50.0, blend_steps=3)
    try:
        actions = run(ex, 60, dt=0.02)
    finally:
        ex.close()
    ref = traj(np.arange(60))
    assert ex.stats.n_chunks >= 5
    assert ex.stats.latency_ms(50) >= 55.0
    assert max(list(ex.stats.latency_steps)[1:]) >= 2  # latency really spanned control steps
    # aligned to the reference at every step (2e-2 = one step of the slowest reference component
    # at worst when a loaded CPU shifts a chunk by a step inside the blend window)
    assert np.abs(actions - ref).max() < 2e-2
    assert max_jump(actions) < max_jump(ref) + 2e-2


def test_auto_request_ahead_follows_measured_latency():
    src = TrajSource(horizon=32, delay_s=0.1)
    ex = ChunkExecutor(src, n_action_steps=20, mode="async", control_hz=50.0)
    try:
        run(ex, 40, dt=0.02)
        # p90 ~0.1 s at 50 Hz = 5 steps (+1): requests go out ~6 steps before the horizon
        assert 5 <= ex._ahead() <= 9
    finally:
        ex.close()


class TorchPolicy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        assert isinstance(obs["observation.state"], torch.Tensor)
        s = obs["observation.state"][:, -1, :1]  # (B, 1)
        return (s[:, None, :] + torch.arange(4.0)[None, :, None]).repeat(1, 1, 3) * self.w


def test_torch_policy_gets_tensors_and_returns_numpy():
    ex = ChunkExecutor(TorchPolicy(), n_action_steps=4)
    a = ex.act({"observation.state": np.array([5.0, 1.0], np.float32)})
    assert isinstance(a, np.ndarray) and a.shape == (3,)
    np.testing.assert_allclose(a, [5.0, 5.0, 5.0])
    np.testing.assert_allclose(ex.act({"observation.state": np.array([9.0, 1.0], np.float32)}), [6.0] * 3)


def test_callable_source_and_bad_shapes():
    ex = ChunkExecutor(lambda w: np.zeros((4, 2)), n_action_steps=2)
    assert ex.act({"observation.state": np.zeros(2)}).shape == (2,)
    bad = ChunkExecutor(lambda w: np.zeros(3), n_action_steps=2)
    with pytest.raises(ValueError, match="expected"):
        bad.act({"observation.state": np.zeros(2)})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_action_steps": 0}, "n_action_steps"),
        ({"n_action_steps": 4, "mode": "fast"}, "mode"),
        ({"n_action_steps": 4, "request_ahead_steps": 5}, "request_ahead_steps"),
        ({"n_action_steps": 4, "blend_steps": -1}, "blend_steps"),
        ({"n_action_steps": 4, "control_hz": 0}, "control_hz"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChunkExecutor(TrajSource(), **kwargs)


def test_async_times_out_when_source_hangs():
    ev = threading.Event()

    def hang(window):
        ev.wait(5)
        return np.zeros((4, 2))

    ex = ChunkExecutor(hang, n_action_steps=4, mode="async", starve_timeout_s=0.2)
    with pytest.raises(TimeoutError, match="starve_timeout_s"):
        ex.act({"observation.state": np.zeros(2)})
    ev.set()
    ex.close()


class NoisyTorchPolicy(TorchPolicy):
    def predict_chunk(self, obs, generator=None):  # type: ignore[override]
        return torch.randn((1, 4, 3), generator=generator)


def test_seed_makes_sampling_policy_reproducible():
    a = ChunkExecutor(NoisyTorchPolicy(), n_action_steps=2, seed=7)
    b = ChunkExecutor(NoisyTorchPolicy(), n_action_steps=2, seed=7)
    obs = {"observation.state": np.zeros(2, np.float32)}
    run_a = [a.act(obs) for _ in range(6)]
    run_b = [b.act(obs) for _ in range(6)]
    np.testing.assert_array_equal(np.stack(run_a), np.stack(run_b))
    a.reset(seed=7)
    np.testing.assert_array_equal(a.act(obs), run_a[0])
    assert not np.allclose(run_a[0], run_a[2])  # fresh noise per chunk


def test_n_action_steps_defaults_to_policy_config():
    class Cfg:
        n_obs_steps, n_action_steps = 1, 5

    src = TrajSource(horizon=16)
    src.config = Cfg()  # type: ignore[attr-defined]
    ex = ChunkExecutor(src)
    run(ex, 11)
    assert ex.n_action_steps == 5 and len(src.calls) == 3
    with pytest.raises(ValueError, match="n_action_steps not given"):
        ChunkExecutor(lambda w: np.zeros((4, 2)))


# ---------------------------------------------------------------------------------------- batched
class BatchTraj(TrajSource):
    """Records the batch size of every call."""

    def predict_chunk(self, obs):
        with self.lock:
            self.calls.append({"B": np.asarray(obs["observation.state"]).shape[0]})
        t0 = np.asarray(obs["observation.state"])[:, -1, 0]
        return traj(t0[:, None] + np.arange(self.horizon)[None, :])


def test_batched_sync_equals_one_executor_per_env_and_predicts_in_one_call():
    """N envs in one executor get exactly the actions N single-env executors give, with one batched
    predict per chunk boundary; `reset(env=i)` starts env i over without touching the others."""
    n, ta = 3, 4
    src = BatchTraj(16)
    batched = ChunkExecutor(src, n_action_steps=ta, n_envs=n, n_obs_steps=2)
    singles = [ChunkExecutor(BatchTraj(16), n_action_steps=ta, n_obs_steps=2) for _ in range(n)]
    starts = [0, 100, 200]
    out_b, out_s = [], []
    for k in range(10):
        obs = [obs_at(s + k) for s in starts]
        out_b.append(batched.act_batch(obs))
        out_s.append(np.stack([ex.act(o) for ex, o in zip(singles, obs)]))
        if k == 5:  # env 1 ends its episode: its next action starts a fresh chunk
            batched.reset(env=1)
            singles[1].reset()
    np.testing.assert_array_equal(np.stack(out_b), np.stack(out_s))
    # one call per chunk boundary: all three envs at steps 0 and 4, env 1 alone at 6 (after its
    # reset), envs 0 and 2 at 8
    assert [c["B"] for c in src.calls] == [3, 3, 1, 2]


def test_batched_sync_batches_only_the_envs_that_need_a_chunk():
    src = BatchTraj(16)
    ex = ChunkExecutor(src, n_action_steps=4, n_envs=3, n_obs_steps=1)
    for k in range(6):
        ex.act_batch([obs_at(k), obs_at(k), obs_at(k)])
        if k == 1:
            ex.reset(env=2)
    # step 0: all 3; step 2: env 2 restarted after step 1; step 4: envs 0 and 1; step 6 would be env 2 again
    assert [c["B"] for c in src.calls] == [3, 1, 2]
    with pytest.raises(ValueError, match="n_envs"):
        ChunkExecutor(src, n_action_steps=4, n_envs=2, mode="async")
    with pytest.raises(IndexError):
        ex.reset(env=3)


def test_async_act_batch_drives_one_robot_like_act():
    """Batched callers (evaluate, ResidualVecEnv) drive an async executor as a batch of one env."""
    ref = ChunkExecutor(TrajSource(16), 8, mode="async", simulate_latency_steps=3, blend_steps=2)
    ex = ChunkExecutor(TrajSource(16), 8, mode="async", simulate_latency_steps=3, blend_steps=2)
    expected = run(ref, 30)
    got = np.concatenate([ex.act_batch([obs_at(k)], [0]) for k in range(30)])
    np.testing.assert_array_equal(got, expected)
    ex.reset(env=0)  # env 0's reset is the executor's
    assert ex.step == 0 and ex.queue_len == 0
    with pytest.raises(ValueError, match="one env"):
        ex.act_batch([obs_at(0), obs_at(0)], [0, 1])
