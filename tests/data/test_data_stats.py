"""robo.data.stats: exact running merge of per-episode statistics."""

from __future__ import annotations

import numpy as np

from robo.data.stats import QUANTILE_NAMES, QUANTILES, RunningStats, merge_all, stats_to_json


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
    assert s.count == 4 and s.mean.shape == (3,)  # counted in frames, as LeRobot counts
    np.testing.assert_allclose(s.mean, v.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.std, v.std(0), rtol=1e-10)
    np.testing.assert_allclose(s.min, v.min(0))
    np.testing.assert_allclose(s.max, v.max(0))
    for name, q in zip(QUANTILE_NAMES, QUANTILES):  # exact, from the 256-level histograms
        np.testing.assert_allclose(s.quantiles[name], np.quantile(v, q, axis=0), rtol=1e-12)
    # LeRobot's layout: (3, 1, 1) per channel, so the stats broadcast against (B, 3, H, W) images
    d = s.to_json()
    assert np.asarray(d["mean"]).shape == (3, 1, 1) and np.asarray(d["q99"]).shape == (3, 1, 1)
    assert d["count"] == [4]
    back = RunningStats.from_json(d)
    assert back.image and back.count == 4
    np.testing.assert_allclose(back.std, s.std, rtol=1e-12)
    # two halves merge to the whole (mean/std exact, pixel-weighted as all frames have H x W pixels)
    merged = RunningStats.from_data(imgs[:1], image=True).merge(RunningStats.from_data(imgs[1:], image=True))
    np.testing.assert_allclose(merged.mean, s.mean, rtol=1e-12)
    np.testing.assert_allclose(merged.std, s.std, rtol=1e-10)


def test_pre_schema_2_image_stats_are_read_in_frames() -> None:
    """robo schema 1 stored image stats as (3,) counted in pixels; the reader passes H x W."""
    old = {"min": [0.0] * 3, "max": [1.0] * 3, "mean": [0.5] * 3, "std": [0.1] * 3, "count": [5 * 6 * 7]}
    s = RunningStats.from_json(old, pixels_per_frame=6 * 7)
    assert s.image and s.count == 5 and s.quantiles is None
    assert np.asarray(s.to_json()["mean"]).shape == (3, 1, 1)


def test_quantiles_merge_as_count_weighted_means() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 2)), rng.normal(3.0, 2.0, size=(10, 2))
    merged = RunningStats.from_data(a).merge(RunningStats.from_data(b))
    for name, q in zip(QUANTILE_NAMES, QUANTILES):
        want = (30 * np.quantile(a, q, axis=0) + 10 * np.quantile(b, q, axis=0)) / 40
        np.testing.assert_allclose(merged.quantiles[name], want, rtol=1e-12)
    no_quantiles = RunningStats.from_json({k: v for k, v in merged.to_json().items() if not k.startswith("q")})
    assert no_quantiles.merge(merged).quantiles is None  # unknown for the union: left out, not made up
