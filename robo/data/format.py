"""robo datasets: LeRobot v3.0 layout plus robo's per-step columns (the format; writer and reader beside it).

Layout under `root` (LeRobot v3.0 names)::

    meta/info.json                                   fps, features, totals, path templates, `robo` block
    meta/stats.json                                  per feature min/max/mean/std/count
    meta/tasks.parquet                               task_index, task
    meta/episodes/chunk-{c:03d}/file-000.parquet     one row per episode of chunk c (the commit record)
    data/chunk-{c:03d}/file-{f:03d}.parquet          frames of one episode
    videos/<camera key>/chunk-{c:03d}/file-{f:03d}.mp4

File policy: **one data file (and one mp4 per camera) per episode**, episode e living in chunk
e // 1000, file e % 1000. v3 allows any number of episodes per file because `meta/episodes` maps
each episode to its files and offsets, so LeRobot-style readers follow the map. We choose one
episode per file because it makes crash safety trivial: an episode's files are written under a
temporary name, fsynced and `os.replace`d into place, and no finished file is ever reopened or
appended to. Only after all of an episode's files are in place is the `meta/episodes` shard
rewritten (atomically) to list it; that row is the commit point. `stats.json` and `info.json` are
rewritten atomically afterwards. The reader treats as present exactly the episodes listed in
`meta/episodes` whose files exist, and derives totals and stats from those rows (each row carries
the episode's own stats, LeRobot's `stats/<key>/<stat>` columns), so `kill -9` at any moment loses
at most the episode being written and never leaves a readable-but-wrong dataset.

Frame columns: `timestamp` (float32, frame_index / fps), `frame_index`, `episode_index`, `index`,
`task_index` (int64), the spec's low-dim keys (fixed-size lists, flattened), and robo's columns
`action_source` (policy | human | residual | scripted), `base_action` (float32 (Da,) or null),
`intervention` (bool), `policy_version` (int64, -1 = none), `next.reward` (float32), `next.done`
(bool), `capture_timestamp` (float64 host `time.time()` when the frame was captured). Camera keys
(`observation.images.<cam>`, uint8 (H, W, 3)) are never stored in parquet, only as mp4.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robo.data.stats import STAT_NAMES, RunningStats
from robo.spec import ACTION, Feature, Spec

CODEBASE_VERSION = "v3.0"
#: Version of robo's own additions (columns, `robo` block). Bump on any change to their meaning.
ROBO_SCHEMA_VERSION = 1
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
ACTION_SOURCES = ("policy", "human", "residual", "scripted")

#: LeRobot's bookkeeping columns, always present.
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
#: robo's per-step columns and their defaults when a frame omits them (None = see add_frame).
ROBO_COLUMNS: dict[str, Any] = {
    "action_source": None,
    "base_action": None,
    "intervention": False,
    "policy_version": -1,
    "next.reward": 0.0,
    "next.done": None,
    "capture_timestamp": None,
}
_SCALAR_TYPES = {
    "timestamp": ("float32", pa.float32()),
    "frame_index": ("int64", pa.int64()),
    "episode_index": ("int64", pa.int64()),
    "index": ("int64", pa.int64()),
    "task_index": ("int64", pa.int64()),
    "action_source": ("string", pa.string()),
    "intervention": ("bool", pa.bool_()),
    "policy_version": ("int64", pa.int64()),
    "next.reward": ("float32", pa.float32()),
    "next.done": ("bool", pa.bool_()),
    "capture_timestamp": ("float64", pa.float64()),
}
#: Non-spec keys whose stats are kept.
EXTRA_STAT_KEYS = ("next.reward",)


class DatasetError(ValueError):
    """A dataset on disk is missing, malformed or inconsistent; the message names the path."""


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _chunk_file(episode_index: int) -> tuple[int, int]:
    return divmod(int(episode_index), CHUNKS_SIZE)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({_one_line(e)})") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: unreadable parquet ({_one_line(e)})") from e


# ----------------------------------------------------------------------------------------------
# column <-> arrow conversion
# ----------------------------------------------------------------------------------------------
def _fixed_list(values: np.ndarray, width: int, mask: np.ndarray | None = None) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width, mask=None if mask is None else pa.array(mask))


def _column_to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    """Arrow column -> numpy: fixed-size lists -> (N, W) (nulls -> NaN), strings -> str array."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
        values = arr.values.slice(arr.offset * width, len(arr) * width)
        out = values.to_numpy(zero_copy_only=False).reshape(len(arr), width)
        if arr.null_count:
            out = out.astype(np.float64 if out.dtype == np.float64 else np.float32, copy=True)
            out[arr.is_null().to_numpy(zero_copy_only=False)] = np.nan
        return out
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return np.asarray(arr.to_pylist(), dtype=str)
    return arr.to_numpy(zero_copy_only=False)


def _feature_json(spec: Spec, video_info: dict[str, Any]) -> dict[str, Any]:
    """info.json `features`: bookkeeping columns, the spec's keys, robo's columns."""
    feats: dict[str, Any] = {}
    for name in INDEX_COLUMNS:
        feats[name] = {"dtype": _SCALAR_TYPES[name][0], "shape": [1], "names": None}
    for key, feat in spec.features.items():
        d = feat.to_json()
        if feat.is_image:
            d["info"] = dict(video_info, **{"video.height": feat.shape[0], "video.width": feat.shape[1]})
        feats[key] = d
    act = spec[ACTION]
    for name in ROBO_COLUMNS:
        if name == "base_action":
            feats[name] = {
                "dtype": "float32",
                "shape": list(act.shape),
                "names": list(act.names) if act.names else None,
            }
        else:
            feats[name] = {"dtype": _SCALAR_TYPES[name][0], "shape": [1], "names": None}
    return feats


def episode_columns(
    frames: Sequence[dict[str, Any]], spec: Spec, lowdim_keys: Sequence[str], episode_index: int, from_index: int,
    task_index: int, fps: float,
) -> tuple[dict[str, pa.Array], dict[str, RunningStats]]:
    """The data file's columns of one episode (frames as `DatasetWriter.add_frame` stores them) and the
    episode's stats of its low-dim keys and `next.reward`."""
    n = len(frames)
    stats: dict[str, RunningStats] = {}
    frame_index = np.arange(n, dtype=np.int64)
    cols: dict[str, pa.Array] = {
        "timestamp": pa.array((frame_index / fps).astype(np.float32)),
        "frame_index": pa.array(frame_index),
        "episode_index": pa.array(np.full(n, episode_index, dtype=np.int64)),
        "index": pa.array(from_index + frame_index),
        "task_index": pa.array(np.full(n, task_index, dtype=np.int64)),
    }
    for key in lowdim_keys:
        values = np.stack([f[key] for f in frames]).reshape(n, -1)
        cols[key] = _fixed_list(values, values.shape[1])
        stats[key] = RunningStats.from_data(values)
    da = spec.action_dim
    base = np.full((n, da), np.nan, dtype=np.float32)
    base_null = np.ones(n, dtype=bool)
    for i, f in enumerate(frames):
        if f["base_action"] is not None:
            base[i], base_null[i] = f["base_action"], False
    done = [f["next.done"] for f in frames]
    if all(d is None for d in done):
        done = [i == n - 1 for i in range(n)]
    reward = np.array([f["next.reward"] for f in frames], dtype=np.float32)
    cols["action_source"] = pa.array([f["action_source"] for f in frames], type=pa.string())
    cols["base_action"] = _fixed_list(base, da, base_null)
    cols["intervention"] = pa.array([f["intervention"] for f in frames], type=pa.bool_())
    cols["policy_version"] = pa.array([f["policy_version"] for f in frames], type=pa.int64())
    cols["next.reward"] = pa.array(reward)
    cols["next.done"] = pa.array([bool(d) for d in done], type=pa.bool_())
    cols["capture_timestamp"] = pa.array([f["capture_timestamp"] for f in frames], type=pa.float64())
    stats["next.reward"] = RunningStats.from_data(reward[:, None])
    return cols, stats


def episodes_schema(image_keys: Sequence[str], stat_keys: Sequence[str]) -> pa.Schema:
    """Schema of the meta/episodes rows (LeRobot v3 columns plus each key's `stats/<key>/<stat>`)."""
    fields = [
        pa.field("episode_index", pa.int64()),
        pa.field("tasks", pa.list_(pa.string())),
        pa.field("length", pa.int64()),
        pa.field("dataset_from_index", pa.int64()),
        pa.field("dataset_to_index", pa.int64()),
        pa.field("data/chunk_index", pa.int64()),
        pa.field("data/file_index", pa.int64()),
    ]
    for key in image_keys:
        fields += [
            pa.field(f"videos/{key}/chunk_index", pa.int64()),
            pa.field(f"videos/{key}/file_index", pa.int64()),
            pa.field(f"videos/{key}/from_timestamp", pa.float64()),
            pa.field(f"videos/{key}/to_timestamp", pa.float64()),
        ]
    fields += [
        pa.field("meta/episodes/chunk_index", pa.int64()),
        pa.field("meta/episodes/file_index", pa.int64()),
        pa.field("success", pa.bool_()),
    ]
    for key in stat_keys:
        for name in STAT_NAMES:
            fields.append(
                pa.field(f"stats/{key}/{name}", pa.list_(pa.int64() if name == "count" else pa.float64()))
            )
    return pa.schema(fields)


def episode_files(rows: Sequence[dict[str, Any]], image_keys: Sequence[str]) -> set[str]:
    """The data and video files (paths relative to the root) that meta/episodes `rows` list."""
    files = set()
    for r in rows:
        files.add(DATA_PATH.format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"]))
        for key in image_keys:
            chunk, file = r.get(f"videos/{key}/chunk_index"), r.get(f"videos/{key}/file_index")
            if chunk is not None and file is not None:
                files.add(VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file))
    return files


def same_stats(a: Any, b: Any) -> bool:
    """stats.json contents equal up to float rounding (merging rows at once vs one by one)."""
    if not (isinstance(a, dict) and isinstance(b, dict)) or set(a) != set(b):
        return False
    try:
        return all(set(a[k]) == set(b[k]) and all(np.allclose(a[k][s], b[k][s], rtol=1e-9, atol=1e-12)
                                                 for s in a[k]) for k in a)
    except (TypeError, ValueError):  # ragged or non-numeric values
        return False


def _spec_from_info(info: dict[str, Any]) -> Spec:
    feats = info["features"]
    robo = info.get("robo") or {}
    keys = robo.get("spec_keys") or [k for k in feats if k.startswith("observation.") or k == ACTION]
    return Spec({k: Feature.from_json(feats[k]) for k in keys})


def _stats_columns(key: str) -> list[str]:
    return [f"stats/{key}/{s}" for s in STAT_NAMES]


def _row_stats(row: dict[str, Any], keys: Sequence[str]) -> dict[str, RunningStats]:
    out = {}
    for key in keys:
        cols = _stats_columns(key)
        if all(row.get(c) is not None for c in cols):
            out[key] = RunningStats.from_json({s: row[c] for s, c in zip(STAT_NAMES, cols)})
    return out


def _read_episode_rows(root: Path) -> list[dict[str, Any]]:
    """All rows of meta/episodes/*/*.parquet sorted by episode_index."""
    rows: list[dict[str, Any]] = []
    ep_dir = root / "meta" / "episodes"
    if not ep_dir.is_dir():
        return rows
    for path in sorted(ep_dir.glob("chunk-*/file-*.parquet")):
        table = _read_parquet(path)
        for col in ("episode_index", "length", "dataset_from_index", "dataset_to_index"):
            if col not in table.column_names:
                raise DatasetError(f"{path}: missing column '{col}'")
        rows.extend(table.to_pylist())
    rows.sort(key=lambda r: r["episode_index"])
    return rows
