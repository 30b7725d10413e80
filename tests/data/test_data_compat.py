"""Datasets robo wrote before schema 2 still read the same (fixture robo_v1, written by the
DatasetWriter of commit 0513bef: short column names, null base_action, (3,) image stats in pixels)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from robo.data import Dataset, DatasetError, DatasetWriter

OLD = Path(__file__).parent / "fixtures" / "robo_v1"
CAM = "observation.images.front"
SOURCES = ["scripted", "policy", "residual", "human"]


def test_schema_1_reads_under_the_api_names() -> None:
    info = json.loads((OLD / "meta" / "info.json").read_text())
    assert info["robo"]["schema_version"] == 1 and "action_source" in info["features"]
    ds = Dataset(OLD)
    assert ds.schema_version == 1 and ds.env_id == "PandaLift-v0"
    assert ds.tasks == ["old task", "second task"] and list(ds.episode_lengths) == [6, 4]
    for e, n in enumerate([6, 4]):
        ep = ds.episode(e)
        t = np.arange(n)
        want_state = np.stack([[e, i, 0.25 * i] for i in t]).astype(np.float32)
        np.testing.assert_array_equal(ep["observation.state"], want_state)
        assert list(ep["action_source"]) == [SOURCES[(e + i) % 4] for i in t]
        for i in t:  # null then, NaN now: the same to a caller
            want = np.full(2, np.nan) if i % 2 == 0 else np.array([0.5, -0.5 * i])
            np.testing.assert_array_equal(ep["base_action"][i], want.astype(np.float32))
        np.testing.assert_array_equal(ep["intervention"], t == 1)
        np.testing.assert_array_equal(ep["policy_version"], 3 * e + t)
        np.testing.assert_array_equal(ep["capture_timestamp"], 1.7e9 + e + 0.1 * t)
        np.testing.assert_array_equal(ep["task_index"], np.full(n, e))
        assert np.abs(ep[CAM][:, 0, 0, 0].astype(float) - (30 * e + 20 * t)).max() <= 2  # h264, flat colour
    win = ds.windows(2, 3)
    np.testing.assert_array_equal(win[0]["action_is_pad"], [True, False, False])


def test_schema_1_stats_come_back_in_lerobots_layout() -> None:
    stats = Dataset(OLD).stats
    assert set(stats) == {"observation.state", CAM, "action", "next.reward"}
    assert stats[CAM]["count"] == [10]  # stored as 10 frames x 8 x 8 pixels
    assert np.asarray(stats[CAM]["mean"]).shape == (3, 1, 1)
    assert "q01" not in stats["action"]  # never computed then: left out, not made up
    x = np.concatenate([Dataset(OLD).episode(e)["action"] for e in range(2)]).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["mean"], x.mean(0), rtol=1e-9)


def test_appending_to_schema_1_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "old"
    shutil.copytree(OLD, root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(DatasetError, match=rf"{root}: written by robo schema 1; .* record into a new folder"):
        DatasetWriter(root, Dataset(root).spec, fps=10, task="old task", robot_type="panda")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".writer.lock"} == before
