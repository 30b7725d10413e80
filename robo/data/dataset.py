"""robo datasets: LeRobot v3.0 layout plus robo's per-step columns, with a crash-safe writer.

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

import atexit
import copy
import fcntl
import json
import math
import os
import queue
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robo.data.stats import STAT_NAMES, RunningStats, merge_all, stats_to_json
from robo.data.video import CODEC_DEFAULTS, CODEC_NAMES, decode_video, encode_video, fsync_path, tmp_name
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


# ----------------------------------------------------------------------------------------------
# atomic file helpers
# ----------------------------------------------------------------------------------------------
def _replace_into_place(tmp: Path, path: Path, fsync: bool) -> None:
    if fsync:
        fsync_path(tmp)
    os.replace(tmp, path)
    if fsync:
        fsync_path(path.parent)


def _atomic_write_bytes(path: Path, data: bytes, fsync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        tmp.write_bytes(data)
        _replace_into_place(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_write_json(path: Path, obj: Any, fsync: bool) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode(), fsync)


def _atomic_write_parquet(path: Path, table: pa.Table, fsync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        pq.write_table(table, tmp)
        _replace_into_place(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


# ----------------------------------------------------------------------------------------------
# writer
# ----------------------------------------------------------------------------------------------
_OPEN_WRITERS: weakref.WeakSet[DatasetWriter] = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:  # finish pending episodes if the program forgot close()
    for w in list(_OPEN_WRITERS):
        try:
            w.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


class DatasetWriter:
    """Record episodes into a dataset at `root`, creating it or appending to an existing one.

    `add_frame` only buffers (safe to call from a 10-30 Hz control loop); `save_episode` hands the
    episode to a background thread that writes parquet + mp4 and the metadata, and returns at once.
    Background errors are raised (as DatasetError) by the next `save_episode` or `close`.
    When appending, the dataset's spec, fps and robot_type must match; its video settings are kept.

        w = DatasetWriter("data/peg", spec, fps=10, task="insert the peg")
        w.add_frame({"observation.state": s, "action": a, "action_source": "scripted"})
        w.save_episode(success=True)
        w.close()
    """

    def __init__(
        self,
        root: str | Path,
        spec: Spec,
        fps: float,
        task: str,
        robot_type: str = "panda",
        *,
        env_id: str | None = None,
        video_codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        video_options: dict[str, str] | None = None,
        fsync: bool = True,
    ) -> None:
        if ACTION not in spec:
            raise ValueError(f"DatasetWriter: spec has no '{ACTION}' feature")
        if not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"DatasetWriter: fps={fps} must be > 0")
        if not isinstance(task, str) or not task:
            raise ValueError(f"DatasetWriter: task={task!r} must be a non-empty string")
        self.root = Path(root)
        self.spec = spec
        self.fps = float(fps) if not float(fps).is_integer() else int(fps)
        self.task = task
        self.robot_type = robot_type
        self.env_id = env_id  # Gymnasium id of the sim task that produced the data, if any
        self._fsync = fsync
        self._image_keys = spec.image_keys
        self._lowdim_keys = [k for k in spec.features if k not in self._image_keys]
        self._stat_keys = list(spec.features) + list(EXTRA_STAT_KEYS)
        self._allowed = set(spec.features) | set(ROBO_COLUMNS)
        self._video = {
            "codec": video_codec,
            "pix_fmt": pix_fmt,
            "options": dict(CODEC_DEFAULTS.get(video_codec, {}), **(video_options or {})),
        }

        self._lock_fd = self._acquire_lock()
        try:
            info_path = self.root / "meta" / "info.json"
            if info_path.exists():
                self._open_existing()
            else:
                self._create()
        except BaseException:
            os.close(self._lock_fd)
            raise

        self._frames: list[dict[str, Any]] = []
        self._jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"DatasetWriter({self.root.name})", daemon=True)
        self._thread.start()
        _OPEN_WRITERS.add(self)

    # -- setup ---------------------------------------------------------------------------------
    def _acquire_lock(self) -> int:
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError(f"{self.root}: exists and is not a folder")
        if self.root.is_dir() and not (self.root / "meta" / "info.json").exists():
            # empty, or only the lock/temp files of a writer that died before writing info.json
            stray = [p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".")]
            if stray:
                raise DatasetError(f"{self.root}: not empty and has no meta/info.json (not a dataset)")
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "meta" / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise DatasetError(f"{self.root}: another DatasetWriter has this dataset open") from e
        return fd

    def _create(self) -> None:
        self._tasks: list[str] = []
        self._rows: dict[int, list[dict[str, Any]]] = {}  # meta/episodes chunk -> rows
        self._stats: dict[str, RunningStats] = {}
        self._n_written_tasks = 0
        self._next_episode = 0
        self._next_index = 0
        self._write_info()

    def _open_existing(self) -> None:
        info = _read_json(self.root / "meta" / "info.json")
        try:
            old = _spec_from_info(info)
            old_fps = info["fps"]
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{self.root / 'meta' / 'info.json'}: malformed ({_one_line(e)})") from e
        self._check_spec(old)
        if float(old_fps) != float(self.fps):
            raise DatasetError(f"{self.root}: dataset fps is {old_fps}, writer fps is {self.fps}")
        if info.get("robot_type") != self.robot_type:
            raise DatasetError(
                f"{self.root}: dataset robot_type is {info.get('robot_type')!r}, writer has {self.robot_type!r}"
            )
        self.fps = old_fps
        self._video = (info.get("robo") or {}).get("video", self._video)
        self.env_id = self.env_id or (info.get("robo") or {}).get("env_id")
        # stale temporary files of a crashed writer (we hold the lock, so none is in use)
        for tmp in self.root.rglob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)
        tasks_path = self.root / "meta" / "tasks.parquet"
        self._tasks = []
        if tasks_path.exists():
            t = _read_parquet(tasks_path).sort_by("task_index")
            self._tasks = [str(x) for x in t.column("task").to_pylist()]
        self._n_written_tasks = len(self._tasks)
        rows = _read_episode_rows(self.root)
        self._rows = {}
        for r in rows:
            self._rows.setdefault(_chunk_file(r["episode_index"])[0], []).append(r)
        self._stats = merge_all([_row_stats(r, self._stat_keys) for r in rows])
        self._next_episode = rows[-1]["episode_index"] + 1 if rows else 0
        self._next_index = max((r["dataset_to_index"] for r in rows), default=0)

    def _check_spec(self, old: Spec) -> None:
        new = self.spec
        where = f"{self.root}: spec mismatch"
        if ACTION in old and old.action_dim != new.action_dim:
            raise DatasetError(f"{where}: dataset has action dim {old.action_dim}, writer spec has {new.action_dim}")
        if set(old.features) != set(new.features):
            raise DatasetError(f"{where}: dataset keys {sorted(old.features)}, writer keys {sorted(new.features)}")
        for k, f in old.features.items():
            g = new[k]
            if tuple(f.shape) != tuple(g.shape) or f.dtype != g.dtype:
                raise DatasetError(
                    f"{where}: '{k}' is {f.dtype}{list(f.shape)} in dataset, {g.dtype}{list(g.shape)} in writer spec"
                )

    # -- public API ----------------------------------------------------------------------------
    @property
    def next_episode_index(self) -> int:
        """The episode_index the next `save_episode` will get."""
        return self._next_episode

    @property
    def num_buffered_frames(self) -> int:
        """Frames added since the last save/discard."""
        return len(self._frames)

    @property
    def num_pending(self) -> int:
        """Episodes handed to the background thread and not yet written."""
        return self._jobs.qsize()

    def add_frame(self, frame: dict[str, Any]) -> None:
        """Buffer one step. Keys: every spec key, plus optional robo columns.

        `action_source` is required (one of ACTION_SOURCES). Defaults: `base_action` null,
        `intervention` False, `policy_version` -1, `next.reward` 0, `next.done` False except True on
        the episode's last frame when no frame sets it, `capture_timestamp` = time.time() now.
        Arrays are copied, so the caller may reuse its buffers.
        """
        if self._closed:
            raise RuntimeError(f"DatasetWriter({self.root}): add_frame after close()")
        unknown = frame.keys() - self._allowed
        if unknown:
            raise ValueError(f"add_frame: unknown keys {sorted(unknown)}; allowed: spec keys and {list(ROBO_COLUMNS)}")
        out: dict[str, Any] = {}
        for key, feat in self.spec.features.items():
            if key not in frame:
                raise ValueError(f"add_frame: missing '{key}'")
            value = frame[key]
            if feat.is_image and getattr(value, "dtype", None) != np.uint8:
                raise ValueError(
                    f"add_frame: '{key}' must be a uint8 array, got {getattr(value, 'dtype', type(value))}"
                )
            arr = np.array(value, dtype=feat.dtype, copy=True)
            if arr.shape != tuple(feat.shape):
                raise ValueError(f"add_frame: '{key}' has shape {arr.shape}, spec says {tuple(feat.shape)}")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"add_frame: '{key}' contains NaN or inf")
            out[key] = arr
        src = frame.get("action_source")
        if src not in ACTION_SOURCES:
            raise ValueError(f"add_frame: action_source={src!r}, expected one of {ACTION_SOURCES}")
        out["action_source"] = src
        base = frame.get("base_action")
        if base is not None:
            base = np.array(base, dtype=np.float32, copy=True).reshape(-1)
            if base.shape != (self.spec.action_dim,):
                raise ValueError(
                    f"add_frame: 'base_action' has shape {base.shape}, action dim is {self.spec.action_dim}"
                )
        out["base_action"] = base
        out["intervention"] = bool(frame.get("intervention", False))
        out["policy_version"] = int(frame.get("policy_version", -1))
        out["next.reward"] = float(frame.get("next.reward", 0.0))
        done = frame.get("next.done")
        out["next.done"] = None if done is None else bool(done)
        ts = frame.get("capture_timestamp")
        out["capture_timestamp"] = time.time() if ts is None else float(ts)
        self._frames.append(out)

    def save_episode(self, success: bool | None = None, task: str | None = None) -> int:
        """Hand the buffered frames to the background writer; returns the episode index at once."""
        self._raise_background_error()
        if self._closed:
            raise RuntimeError(f"DatasetWriter({self.root}): save_episode after close()")
        if not self._frames:
            raise ValueError("save_episode: no frames were added")
        task = self.task if task is None else task
        if task not in self._tasks:
            self._tasks.append(task)
        job = {
            "episode_index": self._next_episode,
            "from_index": self._next_index,
            "frames": self._frames,
            "task": task,
            "task_index": self._tasks.index(task),
            "tasks": list(self._tasks),
            "success": None if success is None else bool(success),
        }
        self._frames = []
        self._next_episode += 1
        self._next_index += len(job["frames"])
        self._jobs.put(job)
        return job["episode_index"]

    def discard_episode(self) -> None:
        """Drop the buffered frames."""
        self._frames = []

    def close(self) -> None:
        """Wait for pending episodes to be written and release the dataset (unsaved frames are dropped)."""
        if self._closed:
            return
        if self._frames:
            warnings.warn(
                f"DatasetWriter({self.root}): close() dropped {len(self._frames)} unsaved frames", stacklevel=2
            )
            self._frames = []
        self._closed = True
        self._jobs.put(None)
        self._thread.join()
        os.close(self._lock_fd)
        _OPEN_WRITERS.discard(self)
        self._raise_background_error()

    def wait(self) -> None:
        """Block until every saved episode is written."""
        self._jobs.join()
        self._raise_background_error()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise_background_error(self) -> None:
        if self._error is not None:
            e = self._error
            raise DatasetError(f"{self.root}: background write failed ({_one_line(e)})") from e

    # -- background thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    self._write_episode(job)
            except BaseException as e:  # noqa: BLE001 - surfaced by save_episode/close
                self._error = e
            finally:
                self._jobs.task_done()

    def _write_episode(self, job: dict[str, Any]) -> None:
        frames: list[dict[str, Any]] = job["frames"]
        ep, n, start = job["episode_index"], len(frames), job["from_index"]
        chunk, file = _chunk_file(ep)
        fps = float(self.fps)

        # 1. videos, then the data file (each atomic)
        stats: dict[str, RunningStats] = {}
        row: dict[str, Any] = {}
        for key in self._image_keys:
            video = np.stack([f[key] for f in frames])
            path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            encode_video(
                path,
                video,
                fps,
                codec=self._video["codec"],
                pix_fmt=self._video["pix_fmt"],
                options=self._video["options"],
                fsync=self._fsync,
            )
            stats[key] = RunningStats.from_data(video, image=True)
            row[f"videos/{key}/chunk_index"] = chunk
            row[f"videos/{key}/file_index"] = file
            row[f"videos/{key}/from_timestamp"] = 0.0
            row[f"videos/{key}/to_timestamp"] = n / fps

        frame_index = np.arange(n, dtype=np.int64)
        cols: dict[str, pa.Array] = {
            "timestamp": pa.array((frame_index / fps).astype(np.float32)),
            "frame_index": pa.array(frame_index),
            "episode_index": pa.array(np.full(n, ep, dtype=np.int64)),
            "index": pa.array(start + frame_index),
            "task_index": pa.array(np.full(n, job["task_index"], dtype=np.int64)),
        }
        for key in self._lowdim_keys:
            values = np.stack([f[key] for f in frames]).reshape(n, -1)
            cols[key] = _fixed_list(values, values.shape[1])
            stats[key] = RunningStats.from_data(values)
        da = self.spec.action_dim
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
        data_path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        _atomic_write_parquet(data_path, pa.table(cols), self._fsync)

        # 2. tasks (only grows), then the meta/episodes row: the commit point
        if len(job["tasks"]) > self._n_written_tasks:
            table = pa.table(
                {
                    "task_index": pa.array(range(len(job["tasks"])), pa.int64()),
                    "task": pa.array(job["tasks"], pa.string()),
                }
            )
            _atomic_write_parquet(self.root / "meta" / "tasks.parquet", table, self._fsync)
            self._n_written_tasks = len(job["tasks"])
        row.update(
            {
                "episode_index": ep,
                "tasks": [job["task"]],
                "length": n,
                "dataset_from_index": start,
                "dataset_to_index": start + n,
                "data/chunk_index": chunk,
                "data/file_index": file,
                "meta/episodes/chunk_index": chunk,
                "meta/episodes/file_index": 0,
                "success": job["success"],
            }
        )
        for key, s in stats.items():
            for name, value in s.to_json().items():
                row[f"stats/{key}/{name}"] = value
        shard = self._rows.setdefault(chunk, [])
        shard.append(row)
        ep_path = self.root / EPISODES_PATH.format(chunk_index=chunk, file_index=0)
        _atomic_write_parquet(ep_path, pa.Table.from_pylist(shard, schema=self._episodes_schema()), self._fsync)

        # 3. derived metadata (the reader never depends on these being current)
        self._stats = merge_all([self._stats, stats])
        _atomic_write_json(self.root / "meta" / "stats.json", stats_to_json(self._stats), self._fsync)
        self._write_info()

    def _episodes_schema(self) -> pa.Schema:
        fields = [
            pa.field("episode_index", pa.int64()),
            pa.field("tasks", pa.list_(pa.string())),
            pa.field("length", pa.int64()),
            pa.field("dataset_from_index", pa.int64()),
            pa.field("dataset_to_index", pa.int64()),
            pa.field("data/chunk_index", pa.int64()),
            pa.field("data/file_index", pa.int64()),
        ]
        for key in self._image_keys:
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
        for key in self._stat_keys:
            for name in STAT_NAMES:
                fields.append(
                    pa.field(f"stats/{key}/{name}", pa.list_(pa.int64() if name == "count" else pa.float64()))
                )
        return pa.schema(fields)

    def _write_info(self) -> None:
        rows = [r for shard in self._rows.values() for r in shard]
        total_frames = sum(r["length"] for r in rows)
        video_info = {
            "video.codec": CODEC_NAMES.get(self._video["codec"], self._video["codec"]),
            "video.pix_fmt": self._video["pix_fmt"],
            "video.is_depth_map": False,
            "video.fps": float(self.fps),
            "video.channels": 3,
            "has_audio": False,
        }
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(rows),
            "total_frames": total_frames,
            "total_tasks": self._n_written_tasks,
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {"train": f"0:{len(rows)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self._image_keys else None,
            "features": _feature_json(self.spec, video_info),
            "robo": {
                "schema_version": ROBO_SCHEMA_VERSION,
                "spec_keys": list(self.spec.features),
                "file_policy": "one_episode_per_file",
                "action_sources": list(ACTION_SOURCES),
                "video": self._video,
                "env_id": self.env_id,
            },
        }
        _atomic_write_json(self.root / "meta" / "info.json", info, self._fsync)


# ----------------------------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------------------------
class Dataset:
    """Read-only view of a dataset written by DatasetWriter. Validates on open and never modifies
    files. (Episodes sharing a file, as LeRobot writes them, are sliced by their meta/episodes row;
    that path is untested against LeRobot-written data.)

    Low-dim columns of all present episodes are loaded into memory on open; videos are decoded on
    first use and cached as uint8 arrays. Episodes are addressed by position 0..num_episodes-1
    (`episode_indices[i]` gives the stored `episode_index`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder does not exist")
        info_path = self.root / "meta" / "info.json"
        self.info = _read_json(info_path)
        try:
            if self.info["codebase_version"] != CODEBASE_VERSION:
                raise DatasetError(
                    f"{info_path}: codebase_version {self.info['codebase_version']!r}, expected {CODEBASE_VERSION!r}"
                )
            self.fps: float = self.info["fps"]
            self.spec: Spec = _spec_from_info(self.info)
            self._data_path: str = self.info["data_path"]
            self._video_path: str | None = self.info.get("video_path")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, DatasetError):
                raise
            raise DatasetError(f"{info_path}: malformed ({_one_line(e)})") from e
        self.robot_type: str | None = self.info.get("robot_type")
        self.env_id: str | None = (self.info.get("robo") or {}).get("env_id")
        """Gymnasium id of the sim task that recorded the data (None for real-robot data)."""
        self._image_keys = self.spec.image_keys
        if self._image_keys and not self._video_path:
            raise DatasetError(f"{info_path}: has camera features but no video_path")

        tasks_path = self.root / "meta" / "tasks.parquet"
        self.tasks: list[str] = []
        if tasks_path.exists():
            t = _read_parquet(tasks_path)
            if "task" not in t.column_names or "task_index" not in t.column_names:
                raise DatasetError(f"{tasks_path}: expected columns task_index, task")
            t = t.sort_by("task_index")
            self.tasks = [str(x) for x in t.column("task").to_pylist()]

        self.episodes: list[dict[str, Any]] = [r for r in _read_episode_rows(self.root) if self._files_exist(r)]
        self._load_lowdim()
        self._video_cache: dict[tuple[str, int], np.ndarray] = {}
        self._image_arrays: dict[str, np.ndarray] = {}
        self._stats: dict[str, Any] | None = None

    # -- paths ---------------------------------------------------------------------------------
    def _data_file(self, row: dict[str, Any]) -> Path:
        return self.root / self._data_path.format(
            chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
        )

    def _video_file(self, row: dict[str, Any], key: str) -> Path:
        assert self._video_path is not None
        return self.root / self._video_path.format(
            video_key=key,
            chunk_index=row[f"videos/{key}/chunk_index"],
            file_index=row[f"videos/{key}/file_index"],
        )

    def _files_exist(self, row: dict[str, Any]) -> bool:
        try:
            paths = [self._data_file(row)] + [self._video_file(row, k) for k in self._image_keys]
        except (KeyError, TypeError) as e:
            raise DatasetError(
                f"{self.root}/meta/episodes: episode {row.get('episode_index')} row malformed ({_one_line(e)})"
            ) from e
        return all(p.is_file() for p in paths)

    # -- loading -------------------------------------------------------------------------------
    def _load_lowdim(self) -> None:
        parts: dict[str, list[np.ndarray]] = {}
        lengths = []
        for row in self.episodes:
            path = self._data_file(row)
            table = _read_parquet(path)
            n = table.num_rows
            ep_from = row["dataset_from_index"] - (
                0 if "index" not in table.column_names or n == 0 else int(table.column("index")[0].as_py())
            )
            if n < row["length"] or ep_from < 0:
                raise DatasetError(
                    f"{path}: has {n} rows, meta/episodes says episode {row['episode_index']} has {row['length']}"
                )
            # a file may hold several episodes (LeRobot-written datasets): take this one's rows
            table = table.slice(ep_from, row["length"])
            missing = [
                k
                for k in (*INDEX_COLUMNS, *self.spec.features)
                if k not in self._image_keys and k not in table.column_names
            ]
            if missing:
                raise DatasetError(f"{path}: missing columns {missing}")
            for name in table.column_names:
                try:
                    parts.setdefault(name, []).append(_column_to_numpy(table.column(name)))
                except (pa.ArrowException, ValueError) as e:
                    raise DatasetError(f"{path}: column '{name}' unreadable ({_one_line(e)})") from e
            lengths.append(row["length"])
        self._lengths = np.asarray(lengths, dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)
        cols: dict[str, np.ndarray] = {}
        for name, chunks in parts.items():
            if len(chunks) != len(self.episodes):
                continue  # a column only some files have (e.g. added later): not exposed
            arr = np.concatenate(chunks)
            if name in self.spec.features:
                feat = self.spec[name]
                arr = arr.astype(feat.dtype, copy=False).reshape(len(arr), *feat.shape)
            cols[name] = arr
        for key, feat in self.spec.features.items():  # empty dataset: typed empty arrays
            if key not in cols and key not in self._image_keys and not self.episodes:
                cols[key] = np.zeros((0, *feat.shape), dtype=feat.dtype)
        self._columns = cols

    def _decode(self, key: str, i: int) -> np.ndarray:
        if key in self._image_arrays:
            s = self._starts[i]
            return self._image_arrays[key][s : s + self._lengths[i]]
        if (key, i) not in self._video_cache:
            row = self.episodes[i]
            path = self._video_file(row, key)
            shape = tuple(self.spec[key].shape)
            try:
                video = decode_video(path, shape)  # type: ignore[arg-type]
            except Exception as e:  # noqa: BLE001 - av.error.* and shape errors
                raise DatasetError(f"{path}: cannot decode video ({_one_line(e)})") from e
            fps = float(self.fps)
            first = int(round(float(row.get(f"videos/{key}/from_timestamp") or 0.0) * fps))
            if len(video) < first + row["length"]:
                raise DatasetError(
                    f"{path}: has {len(video)} frames, episode {row['episode_index']} needs {first + row['length']}"
                )
            self._video_cache[(key, i)] = video[first : first + row["length"]]
        return self._video_cache[(key, i)]

    def load_videos(self, keys: Sequence[str] | None = None) -> None:
        """Decode every episode's video for `keys` (default: all cameras) into one cached array each."""
        for key in self._image_keys if keys is None else keys:
            if key in self._image_arrays:
                continue
            h, w, c = self.spec[key].shape
            out = np.empty((self.num_frames, h, w, c), dtype=np.uint8)
            for i in range(self.num_episodes):
                s = self._starts[i]
                out[s : s + self._lengths[i]] = self._decode(key, i)
                self._video_cache.pop((key, i), None)
            self._image_arrays[key] = out

    # -- public API ----------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self._lengths.sum())

    @property
    def episode_lengths(self) -> np.ndarray:
        return self._lengths.copy()

    @property
    def episode_indices(self) -> list[int]:
        return [int(r["episode_index"]) for r in self.episodes]

    @property
    def stats(self) -> dict[str, dict[str, list[float] | list[int]]]:
        """Per-feature min/max/mean/std/count over the present episodes (see robo.data.stats).

        Merged from the per-episode stats in meta/episodes, so always consistent with the
        episodes present; `meta/stats.json` is used only for datasets without them.
        """
        if self._stats is None:
            keys = list(self.spec.features) + list(EXTRA_STAT_KEYS)
            per_ep = [_row_stats(r, keys) for r in self.episodes]
            if per_ep and all(p for p in per_ep):
                self._stats = stats_to_json(merge_all(per_ep))
            else:
                path = self.root / "meta" / "stats.json"
                self._stats = _read_json(path) if path.exists() and per_ep else {}
        return copy.deepcopy(self._stats)

    @property
    def columns(self) -> list[str]:
        """Names of all per-frame columns `episode(i)` returns."""
        return list(self._columns) + self._image_keys

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """All columns of episode `i` (position), including decoded images (N, H, W, 3) uint8."""
        n = self.num_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range for {n} episodes")
        i %= n
        s, e = self._starts[i], self._starts[i] + self._lengths[i]
        out = {k: v[s:e].copy() for k, v in self._columns.items()}
        for key in self._image_keys:
            out[key] = np.array(self._decode(key, i))
        return out

    def windows(
        self,
        n_obs_steps: int,
        horizon: int,
        keys: Sequence[str] | None = None,
        episodes: Sequence[int] | None = None,
    ) -> Windows:
        """Training windows, one per frame t of the chosen episodes (default all).

        Each item: obs keys (default: every spec key except `action`) -> (To, ...) for steps
        t-To+1..t; `action` -> (T, Da) for steps t-To+1..t-To+T; `action_is_pad` -> (T,) bool.
        Steps outside the episode repeat its edge frame. Decodes the needed videos once.
        """
        if n_obs_steps < 1 or horizon < 1:
            raise ValueError(f"windows: n_obs_steps={n_obs_steps} and horizon={horizon} must be >= 1")
        keys = [k for k in self.spec.features if k != ACTION] if keys is None else list(keys)
        for k in keys:
            if k not in self._columns and k not in self._image_keys:
                raise KeyError(f"windows: unknown key '{k}'; have {self.columns}")
        self.load_videos([k for k in keys if k in self._image_keys])
        arrays = {k: self._image_arrays[k] if k in self._image_keys else self._columns[k] for k in keys}
        eps = range(self.num_episodes) if episodes is None else [int(e) % max(self.num_episodes, 1) for e in episodes]
        return Windows(
            arrays,
            self._columns.get(ACTION, np.zeros((0, 0), np.float32)),
            self._starts,
            self._lengths,
            list(eps),
            n_obs_steps,
            horizon,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.root)!r}, episodes={self.num_episodes}, frames={self.num_frames}, "
            f"fps={self.fps}, keys={list(self.spec.features)})"
        )


class Windows:
    """Map-style dataset of (obs history, action chunk) windows; works with torch DataLoader.

    Item i is a dict of numpy arrays: obs keys (To, ...), `action` (T, Da) float32,
    `action_is_pad` (T,) bool. Built by `Dataset.windows`.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        actions: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
        episodes: list[int],
        n_obs_steps: int,
        horizon: int,
    ) -> None:
        self.arrays = arrays
        self.actions = actions
        self.n_obs_steps = n_obs_steps
        self.horizon = horizon
        ts, lo, hi = [], [], []
        for e in episodes:
            s, n = int(starts[e]), int(lengths[e])
            ts.append(np.arange(s, s + n))
            lo.append(np.full(n, s))
            hi.append(np.full(n, s + n))
        cat = (lambda x: np.concatenate(x).astype(np.int64)) if ts else (lambda x: np.zeros(0, np.int64))
        self._t, self._lo, self._hi = cat(ts), cat(lo), cat(hi)
        self._obs_offsets = np.arange(-n_obs_steps + 1, 1)
        self._act_offsets = np.arange(-n_obs_steps + 1, -n_obs_steps + 1 + horizon)

    def __len__(self) -> int:
        return len(self._t)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)}")
        t, lo, hi = self._t[i], self._lo[i], self._hi[i]
        obs_idx = np.clip(t + self._obs_offsets, lo, hi - 1)
        act_raw = t + self._act_offsets
        out = {k: v[obs_idx] for k, v in self.arrays.items()}
        out[ACTION] = self.actions[np.clip(act_raw, lo, hi - 1)]
        out["action_is_pad"] = (act_raw < lo) | (act_raw >= hi)
        return out
