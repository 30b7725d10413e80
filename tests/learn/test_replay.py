"""Replay: n-step returns against a hand-computed example, mixing ratio, NaN rejection, atomic save."""

import numpy as np
import pytest
import torch

from robo.learn.replay import NStepAccumulator, ReplayBuffer, Step, sample_mixed


def _step(t, r, term=False, trunc=False):
    o = np.full(2, t, np.float32)
    return Step(o, o[:1] * 0 + t, o[:1] * 0 + t, r, o + 1, o[:1] * 0 + t + 1, term, trunc)


def test_nstep_returns_hand_computed():
    gamma = 0.9
    acc = NStepAccumulator(3, gamma)
    out = []
    rewards = [0.0, 1.0, 2.0, 3.0]
    for t, r in enumerate(rewards):
        out += acc.push(_step(t, r, term=(t == 3)))
    # windows: t=0: 0 + .9*1 + .81*2, next = s3, discount .729 ; t=1: 1 + .9*2 + .81*3, terminated -> 0
    assert len(out) == 4
    assert out[0]["reward"] == pytest.approx(0 + 0.9 * 1 + 0.81 * 2)
    assert out[0]["discount"] == pytest.approx(0.729)
    assert out[0]["next_obs"][0] == pytest.approx(3.0)  # s_{0+3}
    assert out[1]["reward"] == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)
    assert out[1]["discount"] == 0.0  # the window contains the terminal step
    assert out[3]["reward"] == pytest.approx(3.0)
    assert out[3]["discount"] == 0.0


def test_truncation_bootstraps():
    acc = NStepAccumulator(3, 0.5)
    out = acc.push(_step(0, 1.0)) + acc.push(_step(1, 1.0, trunc=True))
    assert [o["discount"] for o in out] == [pytest.approx(0.25), pytest.approx(0.5)]
    assert out[0]["reward"] == pytest.approx(1.5)


def test_mixed_sampling_fraction_and_nan_rejected():
    rng = np.random.default_rng(0)
    online, demo = ReplayBuffer(100, 2, 1), ReplayBuffer(100, 2, 1)
    tr = {"obs": np.zeros(2), "base": np.zeros(1), "action": np.zeros(1), "reward": 0.0,
          "next_obs": np.zeros(2), "next_base": np.zeros(1), "discount": 1.0}
    for _ in range(10):
        online.add(tr)
        demo.add(dict(tr, reward=1.0))
    batch = sample_mixed(online, demo, 64, 0.5, rng, torch.device("cpu"))
    assert batch["reward"].sum().item() == 32  # exactly half from demos
    with pytest.raises(ValueError, match="NaN"):
        online.add(dict(tr, obs=np.array([np.nan, 0.0])))
    assert len(online) == 10


def test_batch_add_equals_one_by_one_and_wraps():
    """A ring filled in batches (as the spine adds rows) holds what one-by-one adds hold, wrapping included."""
    rng = np.random.default_rng(1)
    rows = {"obs": rng.normal(size=(11, 3)), "base": rng.normal(size=(11, 2)), "action": rng.normal(size=(11, 2)),
            "reward": rng.normal(size=11), "next_obs": rng.normal(size=(11, 3)), "next_base": rng.normal(size=(11, 2)),
            "discount": np.full(11, 0.99)}
    one, batched = ReplayBuffer(8, 3, 2), ReplayBuffer(8, 3, 2)
    for i in range(11):
        one.add({k: v[i] for k, v in rows.items()})
    batched.add_batch({k: v[:5] for k, v in rows.items()})
    batched.add_batch({k: v[5:] for k, v in rows.items()})
    assert len(batched) == 8 and batched.total_added == 11 and batched.ptr == one.ptr == 3
    for k in one.data:
        np.testing.assert_array_equal(batched.data[k], one.data[k])
    big = ReplayBuffer(4, 3, 2)
    big.add_batch(rows)  # more rows than capacity in one batch: the last 4 remain, in ring order
    assert len(big) == 4 and big.total_added == 11
    np.testing.assert_allclose(np.sort(big.data["reward"]), np.sort(rows["reward"][-4:].astype(np.float32)))


def test_on_policy_rollouts_use_each_row_once_and_resume_where_they_left_off():
    from robo.learn.replay import OnPolicyRollouts

    q = OnPolicyRollouts(batch_rows=4)
    q.add({"obs": np.arange(3, dtype=np.float32)})
    assert q.updates_owed(0) == 0 and q.rows_ahead(0) == 3
    q.add({"obs": np.arange(3, 9, dtype=np.float32)})
    assert q.updates_owed(0) == 2
    assert q.take()["obs"].tolist() == [0, 1, 2, 3] and q.take()["obs"].tolist() == [4, 5, 6, 7]
    assert q.held()["obs"].tolist() == [8] and q.updates_owed(2) == 0 and q.rows_ahead(2) == 1
    with pytest.raises(RuntimeError, match="no rows queued"):
        OnPolicyRollouts(4).take()
    resumed = OnPolicyRollouts(batch_rows=4)  # a resume replays every stored row, then drops the used ones
    resumed.add({"obs": np.arange(9, dtype=np.float32)})
    resumed.drop_used(2)
    assert resumed.held()["obs"].tolist() == [8]
    resumed.drop_used(3)
    assert resumed.held() is None
