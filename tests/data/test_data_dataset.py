"""robo.data.dataset: writer -> reader round trip, layout, stats, windows, append, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import CAM, DA, SOURCES, action_at, frame_at, image_at, make_spec, state_at

from robo.data import ACTION_SOURCES, Dataset, DatasetError, DatasetWriter
from robo.data.format import EXTRA_STAT_KEYS, STORED_NAMES
from robo.spec import Spec

LENGTHS = [7, 1, 12]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# round trip
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("camera", [False, True])
def test_round_trip_identical_arrays(tmp_path: Path, write_dataset: Callable[..., Spec], camera: bool) -> None:
    spec = write_dataset(tmp_path / "ds", LENGTHS, camera=camera)
    ds = Dataset(tmp_path / "ds")
    assert ds.num_episodes == 3 and ds.num_frames == sum(LENGTHS) and ds.fps == 10
    assert ds.spec == spec
    assert ds.tasks == ["peg"]
    start = 0
    for e, n in enumerate(LENGTHS):
        ep = ds.episode(e)
        t = np.arange(n)
        np.testing.assert_array_equal(ep["observation.state"], np.stack([state_at(e, i) for i in t]))
        np.testing.assert_array_equal(ep["action"], np.stack([action_at(e, i) for i in t]))
        assert ep["observation.state"].dtype == np.float32 and ep["action"].shape == (n, DA)
        np.testing.assert_array_equal(ep["frame_index"], t)
        np.testing.assert_array_equal(ep["episode_index"], np.full(n, e))
        np.testing.assert_array_equal(ep["index"], start + t)
        np.testing.assert_allclose(ep["timestamp"], t / 10, atol=1e-6)
        assert list(ep["action_source"]) == [SOURCES[(e + i) % 4] for i in t]
        for i in t:
            if i % 3 == 0:
                assert np.isnan(ep["base_action"][i]).all()
            else:
                np.testing.assert_array_equal(ep["base_action"][i], np.full(DA, 0.5 * i, np.float32))
        np.testing.assert_array_equal(ep["intervention"], t % 5 == 0)
        np.testing.assert_array_equal(ep["policy_version"], 10 * e + t)
        np.testing.assert_array_equal(ep["next.reward"], (t / 10).astype(np.float32))
        np.testing.assert_array_equal(ep["next.done"], t == n - 1)  # default: done on the last frame
        np.testing.assert_array_equal(ep["capture_timestamp"], 1.7e9 + 1000 * e + 0.1 * t)
        if camera:
            imgs = ep[CAM]
            assert imgs.shape == (n, 32, 32, 3) and imgs.dtype == np.uint8
            want = np.stack([image_at(e, i) for i in t]).astype(float)
            assert np.abs(imgs - want).mean() < 3.0  # 3/255 mean abs error
        else:
            assert CAM not in ep
        start += n
    assert [r["success"] for r in ds.episodes] == [True, False, True]


def test_info_json_is_valid_and_self_consistent(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    root = tmp_path / "ds"
    spec = write_dataset(root, LENGTHS, camera=True)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "panda" and info["fps"] == 10
    assert info["total_episodes"] == 3 and info["total_frames"] == sum(LENGTHS) and info["total_tasks"] == 1
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    assert info["robo"]["schema_version"] == 2 and info["robo"]["spec_keys"] == list(spec.features)
    assert info["robo"]["columns"] == STORED_NAMES
    feats = info["features"]
    for col in (
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
        "robo.action_source",
        "robo.base_action",
        "intervention",
        "robo.policy_version",
        "next.reward",
        "next.done",
        "robo.capture_time_ns",
    ):
        assert col in feats, col
    # LeRobot takes `action*` columns for actions and `observation.*` for states: only the spec's keys qualify
    assert [k for k in feats if k.startswith(("action", "observation."))] == list(spec.features)
    assert feats[CAM]["dtype"] == "video" and feats[CAM]["shape"] == [32, 32, 3]
    assert feats[CAM]["info"]["video.codec"] == "h264" and feats[CAM]["info"]["video.fps"] == 10.0
    assert feats["observation.state"]["names"] == ["s0", "s1", "s2", "s3"]
    assert feats["robo.base_action"]["shape"] == [DA]

    eps = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [r["episode_index"] for r in eps] == [0, 1, 2]
    assert sum(r["length"] for r in eps) == info["total_frames"]
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert tasks.to_pylist() == [{"task_index": 0, "task": "peg"}]
    # pandas (LeRobot's reader) makes the task text the index: tasks.loc["peg"].task_index == 0
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    to = 0
    for r in eps:
        assert r["dataset_from_index"] == to and r["dataset_to_index"] == to + r["length"]
        to = r["dataset_to_index"]
        data = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
        table = pq.read_table(data)
        assert table.num_rows == r["length"]
        assert {c: table.column(c).null_count for c in table.column_names} == dict.fromkeys(table.column_names, 0)
        video = root / info["video_path"].format(
            video_key=CAM, chunk_index=r[f"videos/{CAM}/chunk_index"], file_index=r[f"videos/{CAM}/file_index"]
        )
        assert video.is_file()
        assert r[f"videos/{CAM}/to_timestamp"] == pytest.approx(r["length"] / 10)
        assert r["tasks"] == ["peg"]
    schema = pq.read_schema(data)
    assert str(schema.field("observation.state").type) == "fixed_size_list<element: float>[4]"
    assert CAM not in schema.names  # images live only in mp4
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert set(stats) == {*spec.features, *EXTRA_STAT_KEYS}
    assert set(stats[CAM]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert np.asarray(stats[CAM]["q50"]).shape == (3, 1, 1) and np.asarray(stats["action"]["q99"]).shape == (DA,)
    assert np.asarray(stats["timestamp"]["mean"]).shape == (1,) and stats[CAM]["count"] == [sum(LENGTHS)]


def test_stats_match_numpy(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    ds = Dataset(tmp_path / "ds")
    on_disk = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    for key in ("observation.state", "action"):
        x = np.concatenate([ds.episode(i)[key] for i in range(3)]).astype(np.float64)
        s = ds.stats[key]
        np.testing.assert_allclose(s["mean"], x.mean(0), rtol=1e-9)
        np.testing.assert_allclose(s["std"], x.std(0), rtol=1e-9)
        np.testing.assert_allclose(s["min"], x.min(0))
        np.testing.assert_allclose(s["max"], x.max(0))
        assert s["count"] == [len(x)]
        np.testing.assert_allclose(on_disk[key]["mean"], s["mean"], rtol=1e-12)
    # quantiles: exact per episode, merged as LeRobot merges them (count-weighted mean)
    per_ep = [np.quantile(ds.episode(i)["action"].astype(np.float64), [0.01, 0.1, 0.5, 0.9, 0.99], axis=0)
              for i in range(3)]
    want = sum(q * n for q, n in zip(per_ep, LENGTHS)) / sum(LENGTHS)
    np.testing.assert_allclose([ds.stats["action"][q] for q in ("q01", "q10", "q50", "q90", "q99")], want)
    # index columns have stats too (LeRobot's writer computes them)
    np.testing.assert_allclose(ds.stats["index"]["max"], [sum(LENGTHS) - 1])
    np.testing.assert_allclose(ds.stats["frame_index"]["mean"], [np.mean([t for n in LENGTHS for t in range(n)])])
    # images: per channel, [0, 1] units, of the frames as recorded, shaped (3, 1, 1), counted in frames
    imgs = np.stack([image_at(e, t) for e, n in enumerate(LENGTHS) for t in range(n)]).reshape(-1, 3) / 255.0
    s = ds.stats[CAM]
    np.testing.assert_allclose(np.asarray(s["mean"]).reshape(3), imgs.mean(0), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(s["std"]).reshape(3), imgs.std(0), rtol=1e-9)
    assert np.asarray(s["std"]).shape == (3, 1, 1) and s["count"] == [sum(LENGTHS)]


# ---------------------------------------------------------------------------------------------
# windows
# ---------------------------------------------------------------------------------------------
def test_windows_shapes_and_padding_at_both_ends(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    write_dataset(tmp_path / "ds", [6, 9], camera=True)
    ds = Dataset(tmp_path / "ds")
    to, T = 2, 4
    win = ds.windows(n_obs_steps=to, horizon=T)
    assert len(win) == 15
    item = win[0]  # episode 0, t=0: obs at t=-1,0 -> both frame 0; action t=-1..2
    assert item["observation.state"].shape == (to, 4) and item[CAM].shape == (to, 32, 32, 3)
    assert item["action"].shape == (T, DA) and item["action_is_pad"].shape == (T,)
    np.testing.assert_array_equal(item["observation.state"], np.stack([state_at(0, 0)] * 2))
    np.testing.assert_array_equal(item["action"], np.stack([action_at(0, t) for t in (0, 0, 1, 2)]))
    np.testing.assert_array_equal(item["action_is_pad"], [True, False, False, False])
    np.testing.assert_array_equal(item[CAM][0], ds.episode(0)[CAM][0])

    item = win[6 + 8]  # episode 1, last frame t=8: actions t=7..10 -> 7, 8, 8, 8
    np.testing.assert_array_equal(item["observation.state"], np.stack([state_at(1, 7), state_at(1, 8)]))
    np.testing.assert_array_equal(item["action"], np.stack([action_at(1, t) for t in (7, 8, 8, 8)]))
    np.testing.assert_array_equal(item["action_is_pad"], [False, False, True, True])

    item = win[6 + 3]  # interior: no padding, consecutive frames of episode 1 only
    np.testing.assert_array_equal(item["action"], np.stack([action_at(1, t) for t in (2, 3, 4, 5)]))
    assert not item["action_is_pad"].any()


def test_windows_keys_subset_episodes_and_dataloader(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    write_dataset(tmp_path / "ds", [5, 8, 3])
    ds = Dataset(tmp_path / "ds")
    win = ds.windows(1, 3, keys=["observation.state", "next.reward"], episodes=[2])
    assert len(win) == 3
    np.testing.assert_array_equal(win[-1]["observation.state"], state_at(2, 2)[None])
    assert win[0]["next.reward"].shape == (1,)
    with pytest.raises(IndexError):
        win[3]
    with pytest.raises(KeyError, match="nope"):
        ds.windows(1, 3, keys=["nope"])
    loader = torch.utils.data.DataLoader(ds.windows(2, 16), batch_size=4, shuffle=True)
    batch = next(iter(loader))
    assert batch["observation.state"].shape == (4, 2, 4) and batch["action"].shape == (4, 16, DA)
    assert batch["action_is_pad"].dtype == torch.bool and batch["action"].dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# append and spec checks
# ---------------------------------------------------------------------------------------------
def test_append_continues_indices_and_tasks(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    root = tmp_path / "ds"
    write_dataset(root, [4, 5], camera=True)
    write_dataset(root, [3], camera=True, first_episode=2, task="stack")
    ds = Dataset(root)
    assert ds.num_episodes == 3 and ds.num_frames == 12 and ds.tasks == ["peg", "stack"]
    ep = ds.episode(2)
    np.testing.assert_array_equal(ep["episode_index"], [2, 2, 2])
    np.testing.assert_array_equal(ep["index"], [9, 10, 11])
    np.testing.assert_array_equal(ep["task_index"], [1, 1, 1])
    np.testing.assert_array_equal(ep["observation.state"][1], state_at(2, 1))
    assert np.abs(ep[CAM].astype(float) - np.stack([image_at(2, t) for t in range(3)])).mean() < 3.0
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 3 and info["total_frames"] == 12 and info["total_tasks"] == 2
    x = np.concatenate([ds.episode(i)["action"] for i in range(3)])
    np.testing.assert_allclose(ds.stats["action"]["mean"], x.mean(0), rtol=1e-9)
    assert ds.stats["action"]["count"] == [12]


def test_append_with_other_action_dim_names_both(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    root = tmp_path / "ds"
    write_dataset(root, [3])
    before = snapshot(root)
    with pytest.raises(DatasetError, match=r"action dim 3.*writer spec has 6"):
        DatasetWriter(root, make_spec(action_dim=6), fps=10, task="peg")
    with pytest.raises(DatasetError, match="keys"):
        DatasetWriter(root, make_spec(camera=True), fps=10, task="peg")
    with pytest.raises(DatasetError, match="fps"):
        DatasetWriter(root, make_spec(), fps=20, task="peg")
    assert snapshot(root) == before
    DatasetWriter(root, make_spec(), fps=10, task="peg").close()  # the lock was released each time


def test_writer_rejects_bad_frames_and_second_writer(tmp_path: Path) -> None:
    spec = make_spec()
    w = DatasetWriter(tmp_path / "ds", spec, fps=10, task="peg")
    good = frame_at(0, 1, spec)
    with pytest.raises(ValueError, match="action_source"):
        w.add_frame({**good, "action_source": "teleop"})
    with pytest.raises(ValueError, match="observation.state"):
        w.add_frame({**good, "observation.state": np.zeros(5)})
    with pytest.raises(ValueError, match="unknown keys"):
        w.add_frame({**good, "rewrad": 1.0})
    with pytest.raises(ValueError, match="missing 'action'"):
        w.add_frame({k: v for k, v in good.items() if k != "action"})
    with pytest.raises(ValueError, match="no frames"):
        w.save_episode()
    with pytest.raises(DatasetError, match="another DatasetWriter"):
        DatasetWriter(tmp_path / "ds", spec, fps=10, task="peg")
    w.add_frame(good)
    w.discard_episode()
    assert w.num_buffered_frames == 0
    buf = good["observation.state"]
    w.add_frame(good)
    buf[:] = -7  # the writer copied the caller's buffer
    assert w.save_episode() == 0
    w.close()
    ds = Dataset(tmp_path / "ds")
    assert ds.num_episodes == 1 and ds.num_frames == 1
    np.testing.assert_array_equal(ds.episode(0)["observation.state"][0], state_at(0, 1))
    assert set(ACTION_SOURCES) == set(SOURCES)


def test_add_frame_is_cheap_and_save_episode_returns_at_once(tmp_path: Path) -> None:
    spec = make_spec(camera=True)
    frames = [frame_at(0, t, spec) for t in range(150)]
    with DatasetWriter(tmp_path / "ds", spec, fps=10, task="peg") as w:
        t0 = time.perf_counter()
        for f in frames:
            w.add_frame(f)
        per_frame = (time.perf_counter() - t0) / len(frames)
        t0 = time.perf_counter()
        w.save_episode()
        save_s = time.perf_counter() - t0
    assert per_frame < 2e-3, per_frame  # ~30 us measured; the control loop runs at 10-30 Hz
    assert save_s < 0.05, save_s  # encoding (~0.1 s here) happens on the background thread
    assert Dataset(tmp_path / "ds").num_frames == 150


# ---------------------------------------------------------------------------------------------
# reader validation: DatasetError naming the path, files untouched
# ---------------------------------------------------------------------------------------------
def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}: dataset folder does not exist"):
        Dataset(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("content", [None, b"{not json", b"[1, 2]", b'{"codebase_version": "v3.0"}'])
def test_garbage_info_json(tmp_path: Path, write_dataset: Callable[..., Spec], content: bytes | None) -> None:
    root = tmp_path / "ds"
    write_dataset(root, [3])
    info = root / "meta" / "info.json"
    if content is None:
        info.unlink()
    else:
        info.write_bytes(content)
    before = snapshot(root)
    with pytest.raises(DatasetError) as err:
        Dataset(root)
    msg = str(err.value)
    assert str(info) in msg and "\n" not in msg
    assert snapshot(root) == before


def test_corrupt_parquet(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    root = tmp_path / "ds"
    write_dataset(root, [3, 4])
    data = root / "data" / "chunk-000" / "file-001.parquet"
    data.write_bytes(data.read_bytes()[:40])  # truncated
    before = snapshot(root)
    with pytest.raises(DatasetError, match=f"{data}: unreadable parquet") as err:
        Dataset(root)
    assert "\n" not in str(err.value)
    assert snapshot(root) == before
    meta = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    meta.write_bytes(b"PAR1garbagePAR1")
    with pytest.raises(DatasetError, match=f"{meta}: unreadable parquet"):
        Dataset(root)


def test_corrupt_video(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    root = tmp_path / "ds"
    write_dataset(root, [3], camera=True)
    video = root / "videos" / CAM / "chunk-000" / "file-000.mp4"
    video.write_bytes(b"\x00" * 100)
    ds = Dataset(root)  # low-dim data is still readable
    np.testing.assert_array_equal(ds.windows(1, 1, keys=[])[0]["action"], action_at(0, 0)[None])
    with pytest.raises(DatasetError, match=f"{video}: cannot decode video"):
        ds.episode(0)


def test_half_written_states_are_invisible(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    """What a crash can leave behind: temp files, files of an uncommitted episode, a lost file."""
    root = tmp_path / "ds"
    write_dataset(root, [3, 4, 5])
    (root / "data" / "chunk-000" / ".file-003.parquet.tmp-1-2").write_bytes(b"half")
    orphan = root / "data" / "chunk-000" / "file-003.parquet"  # files in place, meta row missing
    orphan.write_bytes((root / "data" / "chunk-000" / "file-000.parquet").read_bytes())
    (root / "data" / "chunk-000" / "file-001.parquet").unlink()  # listed but gone
    ds = Dataset(root)
    assert ds.episode_indices == [0, 2] and ds.num_frames == 8
    np.testing.assert_array_equal(ds.episode(1)["observation.state"][4], state_at(2, 4))
    np.testing.assert_allclose(ds.stats["observation.state"]["count"], [8])
    # appending after the crash cleans the temp file, overwrites the orphan, keeps indices unique
    write_dataset(root, [2], first_episode=3)
    assert not list(root.rglob(".*.tmp-*"))
    ds = Dataset(root)
    assert ds.episode_indices == [0, 2, 3]
    np.testing.assert_array_equal(ds.episode(2)["observation.state"][1], state_at(3, 1))


def test_empty_dataset_opens(tmp_path: Path) -> None:
    DatasetWriter(tmp_path / "ds", make_spec(camera=True), fps=10, task="peg").close()
    ds = Dataset(tmp_path / "ds")
    assert ds.num_episodes == 0 and ds.num_frames == 0 and len(ds.windows(2, 4)) == 0
    assert ds.spec == make_spec(camera=True)
    with pytest.raises(DatasetError, match="not a dataset"):
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "notes.txt").write_text("hi")
        DatasetWriter(tmp_path / "junk", make_spec(), fps=10, task="peg")
