"""robo.data.stats: exact running merge of per-episode statistics."""

from __future__ import annotations

import numpy as np

from robo.data.stats import RunningStats, merge_all, stats_to_json


def test_merge_equals_numpy_on_concatenation() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(i, 1 + i, size=(n, 3)) for i, n in enumerate([5, 1, 40, 7])]
    merged = merge_all([{"x": RunningStats.from_data(p)} for p in parts])["x"]
    allx = np.concatenate(parts)
    assert merged.count == len(allx)
    np.testing.assert_allclose(merged.mean, allx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.std, allx.std(0), rtol=1e-10)
    np.testing.assert_array_equal(merged.min, allx.min(0))
    np.testing.assert_array_equal(merged.max, allx.max(0))


def test_json_round_trip_keeps_merging_exact() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 2)), rng.normal(size=(6, 2))
    sa = RunningStats.from_json(stats_to_json({"x": RunningStats.from_data(a)})["x"])
    s = sa.merge(RunningStats.from_data(b))
    np.testing.assert_allclose(s.std, np.concatenate([a, b]).std(0), rtol=1e-10)
    assert s.to_json()["count"] == [16]


def test_image_stats_are_per_channel_in_unit_range() -> None:
    rng = np.random.default_rng(2)
    imgs = rng.integers(5, 240, size=(4, 6, 7, 3), dtype=np.uint8)
    s = RunningStats.from_data(imgs, image=True)
    v = imgs.reshape(-1, 3) / 255.0
    assert s.count == 4 * 6 * 7 and s.mean.shape == (3,)
    np.testing.assert_allclose(s.mean, v.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.std, v.std(0), rtol=1e-10)
    np.testing.assert_allclose(s.min, v.min(0))
    np.testing.assert_allclose(s.max, v.max(0))
