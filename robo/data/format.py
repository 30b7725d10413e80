"""robo datasets: LeRobot v3.0 as LeRobot 0.4 writes it, plus robo's per-step columns (the format;
writer and reader beside it).

Layout under `root` (LeRobot v3.0 names)::

    meta/info.json                                   fps, features, totals, path templates, `robo` block
    meta/stats.json                                  per feature min/max/mean/std/count/q01..q99
    meta/tasks.parquet                               task_index, with the task text as the pandas index
    meta/episodes/chunk-{c:03d}/file-000.parquet     one row per episode of chunk c (the commit record)
    data/chunk-{c:03d}/file-{f:03d}.parquet          frames of one episode
    videos/<camera key>/chunk-{c:03d}/file-{f:03d}.mp4

File policy: **one data file (and one mp4 per camera) per episode**, episode e living in chunk
e // 1000, file e % 1000. v3 allows any number of episodes per file because `meta/episodes` maps
each episode to its files and offsets, so LeRobot-style readers follow the map (and robo's reader
reads LeRobot's multi-episode files). We choose one episode per file because it makes crash safety
trivial: an episode's files are written under a temporary name, fsynced and `os.replace`d into place,
and no finished file is ever reopened or appended to. Only after all of an episode's files are in
place is the `meta/episodes` shard rewritten (atomically) to list it; that row is the commit point.
`stats.json` and `info.json` are rewritten atomically afterwards. The reader treats as present
exactly the episodes listed in `meta/episodes` whose files exist, and derives totals and stats from
those rows (each row carries the episode's own stats, LeRobot's `stats/<key>/<stat>` columns), so
`kill -9` at any moment loses at most the episode being written and never leaves a
readable-but-wrong dataset.

Frame columns: LeRobot's `timestamp` (float32, frame_index / fps), `frame_index`, `episode_index`,
`index`, `task_index` (int64) and the spec's low-dim keys (fixed-size lists, flattened); the
per-step columns LeRobot also defines, under its names: `next.reward` (float32), `next.done` (bool),
`intervention` (bool); and robo's own, under `robo.` (robo schema 2, see STORED_NAMES):
`robo.action_source` (string: policy | human | residual | scripted | hold), `robo.base_action` (float32
(Da,), NaN on frames without a base action: no nulls, so a collate never meets None), `robo.policy_version`
(int64, -1 = none), `robo.segment` (string: a human-in-the-loop session's phase, autonomous | paused |
recovery | correction, "" outside sessions), `robo.intervention_id` (int64, the session's takeover
counter within the episode, -1 = none), `robo.capture_time_ns` (int64 ns of the host's `time.time()` when the frame
was captured; an integer because LeRobot's loader turns every float64 column into a float32 tensor,
which at 1.7e9 s is off by up to a minute). LeRobot takes every `action*` column for an action
feature and `observation.*` for a state, so it trains on none of robo's. Camera keys
(`observation.images.<cam>`, uint8 (H, W, 3)) are never stored in parquet, only as mp4.

robo's Python API keeps the short names (`add_frame({"action_source": ...})`,
`Dataset.episode(i)["base_action"]`, `["capture_timestamp"]` in float64 s); the format layer maps them.
Datasets robo wrote before schema 2 (`robo.schema_version` 1: the short names as columns, nulls for a
missing base action, capture timestamps in float64 s, image stats of shape (3,) counted in pixels) are
read the same way; appending to them is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robo.data.stats import QUANTILE_NAMES, STAT_NAMES, RunningStats
from robo.spec import ACTION, Feature, Spec

CODEBASE_VERSION = "v3.0"
#: Version of robo's own additions (columns, `robo` block). Bump on any change to their meaning.
#: 1: short column names, null base_action; 2: `robo.`-prefixed columns, NaN base_action, LeRobot stats.
ROBO_SCHEMA_VERSION = 2
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
ACTION_SOURCES = ("policy", "human", "residual", "scripted", "hold")
#: what a frame of a human-in-the-loop session was doing (robo.hil); "" outside sessions
SEGMENTS = ("autonomous", "paused", "recovery", "correction")

#: LeRobot's bookkeeping columns, always present.
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
#: robo's per-step columns (API names) and their defaults when a frame omits them (None = see add_frame).
ROBO_COLUMNS: dict[str, Any] = {
    "action_source": None,
    "base_action": None,
    "intervention": False,
    "policy_version": -1,
    "segment": "",
    "intervention_id": -1,
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
    "segment": ("string", pa.string()),
    "intervention_id": ("int64", pa.int64()),
    "next.reward": ("float32", pa.float32()),
    "next.done": ("bool", pa.bool_()),
    "capture_timestamp": ("float64", pa.float64()),
}
#: API name -> stored column name for robo's own columns (schema 2). The per-step columns LeRobot
#: defines keep LeRobot's names (`next.reward`, `next.done`: its RL datasets; `intervention`: its DAgger).
STORED_NAMES = {
    "action_source": "robo.action_source",
    "base_action": "robo.base_action",
    "policy_version": "robo.policy_version",
    "segment": "robo.segment",
    "intervention_id": "robo.intervention_id",
    "capture_timestamp": "robo.capture_time_ns",
}
#: Columns, besides the spec's keys, that get stats (every numeric one, as LeRobot's writer does; not
#: `robo.base_action`, which is undefined on frames without a base action). Stored names.
EXTRA_STAT_KEYS = (*INDEX_COLUMNS, "next.reward", "next.done", "intervention",
                   "robo.policy_version", "robo.capture_time_ns")


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


def stored_names(info: dict[str, Any]) -> dict[str, str]:
    """API name -> stored column name of robo's columns in the dataset described by `info`.

    Schema 2 records the map in `info["robo"]["columns"]`; schema 1 stored the API names themselves;
    a dataset robo did not write (no `robo` block) has none of robo's columns."""
    robo = info.get("robo") or {}
    columns = robo.get("columns")
    if isinstance(columns, dict):
        return {str(k): str(v) for k, v in columns.items()}
    return {name: name for name in ROBO_COLUMNS}


def seconds_to_ns(seconds: Sequence[float]) -> np.ndarray:
    """float64 s -> int64 ns, exact to the ns (whole seconds apart first: at 1.7e9 s, s * 1e9 would
    round to 256 ns), so that `ns_to_seconds` gives back the same float64 for any `time.time()`."""
    s = np.asarray(seconds, dtype=np.float64)
    whole = np.floor(s)
    return whole.astype(np.int64) * 1_000_000_000 + np.round((s - whole) * 1e9).astype(np.int64)


def ns_to_seconds(ns: np.ndarray) -> np.ndarray:
    """int64 ns -> float64 s (the nearest float64)."""
    ns = np.asarray(ns, dtype=np.int64)
    whole, frac = np.divmod(ns, 1_000_000_000)
    return whole.astype(np.float64) + frac.astype(np.float64) / 1e9


#: stored column -> conversion to the API's unit, for columns whose stored unit differs
FROM_STORED = {"robo.capture_time_ns": ns_to_seconds}


def _feature_json(spec: Spec, video_info: dict[str, Any]) -> dict[str, Any]:
    """info.json `features`: bookkeeping columns, the spec's keys, robo's columns (stored names)."""
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
        stored = STORED_NAMES.get(name, name)
        if name == "capture_timestamp":
            feats[stored] = {"dtype": "int64", "shape": [1], "names": None}
        elif name == "base_action":
            feats[stored] = {
                "dtype": "float32",
                "shape": list(act.shape),
                "names": list(act.names) if act.names else None,
            }
        else:
            feats[stored] = {"dtype": _SCALAR_TYPES[name][0], "shape": [1], "names": None}
    return feats




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


def _row_stats(
    row: dict[str, Any], keys: Sequence[str] | None = None, pixels_per_frame: dict[str, int] | None = None
) -> dict[str, RunningStats]:
    """The per-episode stats in a meta/episodes row, for `keys` (default: every key the row has).

    `pixels_per_frame`: H x W of the image keys, to read image stats robo wrote before schema 2."""
    if keys is None:
        keys = [c[len("stats/"):-len("/mean")] for c in row if c.startswith("stats/") and c.endswith("/mean")]
    out = {}
    for key in keys:
        d = {s: row.get(f"stats/{key}/{s}") for s in (*STAT_NAMES, *QUANTILE_NAMES)}
        if all(d[s] is not None for s in STAT_NAMES):
            d = {s: v for s, v in d.items() if v is not None}
            out[key] = RunningStats.from_json(d, pixels_per_frame=(pixels_per_frame or {}).get(key))
    return out


# ----------------------------------------------------------------------------------------------
# meta/tasks.parquet: LeRobot keeps the task text as the pandas index of a `task_index` column
# ----------------------------------------------------------------------------------------------
def tasks_table(tasks: Sequence[str]) -> pa.Table:
    """meta/tasks.parquet as LeRobot reads it: `pd.read_parquet` gives a `task_index` column indexed
    by the task text (`tasks.loc[text].task_index`, `tasks.iloc[i].name`). The index column is named
    `task`, so readers without pandas (and robo before schema 2) see the columns task_index, task."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
             "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("task", pa.string())],
        metadata={b"pandas": json.dumps(pandas_meta).encode()},
    )
    return pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(list(tasks))},
                    schema=schema)


def read_tasks(path: Path) -> list[str]:
    """Task texts ordered by task_index from a tasks.parquet robo or LeRobot wrote."""
    table = _read_parquet(path)
    if "task_index" not in table.column_names:
        raise DatasetError(f"{path}: no 'task_index' column")
    text_column = "task" if "task" in table.column_names else None
    if text_column is None:  # LeRobot: the text is the pandas index (`__index_level_0__` when unnamed)
        meta = (table.schema.metadata or {}).get(b"pandas")
        try:
            index = json.loads(meta)["index_columns"] if meta else []
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{path}: malformed pandas metadata ({_one_line(e)})") from e
        text_column = next((c for c in index if isinstance(c, str) and c in table.column_names), None)
    text_type = table.schema.field(text_column).type if text_column else None
    if text_type is None or not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise DatasetError(f"{path}: expected a task_index column and the task text (a 'task' column or the index)")
    table = table.sort_by("task_index")
    return [str(x) for x in table.column(text_column).to_pylist()]


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
