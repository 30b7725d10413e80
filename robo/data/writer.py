"""`DatasetWriter`: crash-safe background writer of robo datasets (format in robo.data.format).

An episode is written as one `Transaction`: if any of its writes fails (a full disk), every file it
wrote or replaced is put back, so the dataset on disk is exactly its committed episodes (files,
info.json totals, stats.json), never in between. A writer that reopens a dataset after a crash removes
what an interrupted episode left (temporary files, data or video files no episode lists) and rewrites
info.json, stats.json and the task list from the committed episodes when they disagree.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import math
import os
import queue
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from robo.data.atomic import Transaction, atomic_write_json, atomic_write_parquet, remove_empty_tree
from robo.data.format import (
    ACTION_SOURCES,
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    EXTRA_STAT_KEYS,
    ROBO_COLUMNS,
    ROBO_SCHEMA_VERSION,
    SEGMENTS,
    STORED_NAMES,
    VIDEO_PATH,
    DatasetError,
    _chunk_file,
    _feature_json,
    _fixed_list,
    _one_line,
    _read_episode_rows,
    _read_json,
    _row_stats,
    _spec_from_info,
    episode_files,
    read_tasks,
    same_stats,
    seconds_to_ns,
    tasks_table,
)
from robo.data.stats import QUANTILE_NAMES, STAT_NAMES, RunningStats, merge_all, stats_to_json
from robo.data.video import CODEC_DEFAULTS, CODEC_NAMES, encode_video
from robo.spec import ACTION, Spec

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

        created_root = not self.root.exists()
        self._lock_fd = self._acquire_lock()
        try:
            info_path = self.root / "meta" / "info.json"
            if info_path.exists():
                self._open_existing()
            else:
                self._create()
        except BaseException:
            os.close(self._lock_fd)
            if not (self.root / "meta" / "info.json").exists():  # a dataset that never came to be
                remove_empty_tree(self.root, remove_root=created_root)
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
        schema = (info.get("robo") or {}).get("schema_version")
        if schema != ROBO_SCHEMA_VERSION and info.get("total_episodes"):
            written_by = f"robo schema {schema}" if schema else "another writer (no robo block in meta/info.json)"
            raise DatasetError(f"{self.root}: written by {written_by}; this robo appends only to robo schema "
                               f"{ROBO_SCHEMA_VERSION} datasets: record into a new folder")
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
        self._tasks = read_tasks(tasks_path) if tasks_path.exists() else []
        self._n_written_tasks = len(self._tasks)
        rows = _read_episode_rows(self.root)
        self._rows = {}
        for r in rows:
            self._rows.setdefault(_chunk_file(r["episode_index"])[0], []).append(r)
        self._stats = merge_all([_row_stats(r, self._stat_keys) for r in rows])
        self._next_episode = rows[-1]["episode_index"] + 1 if rows else 0
        self._next_index = max((r["dataset_to_index"] for r in rows), default=0)
        self._finish_interrupted(info, rows)

    def _finish_interrupted(self, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """After a crash: drop files no committed episode lists, trailing tasks none uses, and rewrite
        stats.json / info.json when they disagree with the committed episodes."""
        listed = episode_files(rows, self._image_keys)
        stray = [p for pattern in ("data/chunk-*/file-*.parquet", "videos/*/chunk-*/file-*.mp4")
                 for p in self.root.glob(pattern) if p.relative_to(self.root).as_posix() not in listed]
        for path in stray:
            path.unlink()
        used = {t for r in rows for t in (r.get("tasks") or [])}
        n_tasks = len(self._tasks)
        while self._tasks and self._tasks[-1] not in used:
            self._tasks.pop()
        if len(self._tasks) != n_tasks:
            self._write_tasks(self._tasks)
        stats_path = self.root / "meta" / "stats.json"
        try:
            stats_ok = same_stats(json.loads(stats_path.read_text()), stats_to_json(self._stats))
        except (OSError, ValueError):
            stats_ok = False
        if not stats_ok:
            atomic_write_json(stats_path, stats_to_json(self._stats), fsync=self._fsync)
        totals = (len(rows), sum(r["length"] for r in rows), self._n_written_tasks)
        if (info.get("total_episodes"), info.get("total_frames"), info.get("total_tasks")) != totals:
            self._write_info()

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
        `intervention` False, `policy_version` -1, `segment` "" (else one of SEGMENTS), `intervention_id` -1,
        `next.reward` 0, `next.done` False except True on
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
        segment = str(frame.get("segment", ""))
        if segment and segment not in SEGMENTS:
            raise ValueError(f"add_frame: segment={segment!r}, expected one of {SEGMENTS} (or none)")
        out["segment"] = segment
        out["intervention_id"] = int(frame.get("intervention_id", -1))
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
        """Write one episode as a transaction: on any failure every file is put back as it was."""
        tx = Transaction()
        n_rows = {chunk: len(shard) for chunk, shard in self._rows.items()}
        stats, n_tasks = self._stats, self._n_written_tasks
        try:
            self._write_episode_files(job, tx)
        except BaseException:
            problems = tx.rollback()
            for chunk in list(self._rows):
                if chunk in n_rows:
                    del self._rows[chunk][n_rows[chunk]:]
                else:
                    del self._rows[chunk]
            self._stats, self._n_written_tasks = stats, n_tasks
            if problems:
                warnings.warn(f"DatasetWriter({self.root}): rollback incomplete: {'; '.join(problems)}", stacklevel=1)
            raise
        tx.commit()

    def _write_episode_files(self, job: dict[str, Any], tx: Transaction) -> None:
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
            tx.creating(path)
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
        base = np.full((n, da), np.nan, dtype=np.float32)  # NaN, not null: no None reaches a collate
        for i, f in enumerate(frames):
            if f["base_action"] is not None:
                base[i] = f["base_action"]
        done = [f["next.done"] for f in frames]
        if all(d is None for d in done):
            done = [i == n - 1 for i in range(n)]
        cols[STORED_NAMES["action_source"]] = pa.array([f["action_source"] for f in frames], type=pa.string())
        cols[STORED_NAMES["base_action"]] = _fixed_list(base, da)
        cols["intervention"] = pa.array([f["intervention"] for f in frames], type=pa.bool_())
        cols[STORED_NAMES["policy_version"]] = pa.array([f["policy_version"] for f in frames], type=pa.int64())
        cols[STORED_NAMES["segment"]] = pa.array([f["segment"] for f in frames], type=pa.string())
        cols[STORED_NAMES["intervention_id"]] = pa.array([f["intervention_id"] for f in frames], type=pa.int64())
        cols["next.reward"] = pa.array(np.array([f["next.reward"] for f in frames], dtype=np.float32))
        cols["next.done"] = pa.array([bool(d) for d in done], type=pa.bool_())
        capture_ns = seconds_to_ns([f["capture_timestamp"] for f in frames])
        cols[STORED_NAMES["capture_timestamp"]] = pa.array(capture_ns, type=pa.int64())
        for key in self._stat_keys:  # every numeric column, as LeRobot's writer does
            if key not in stats and key in cols:
                stats[key] = RunningStats.from_data(cols[key].to_numpy(zero_copy_only=False)[:, None])
        data_path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        tx.creating(data_path)
        atomic_write_parquet(data_path, pa.table(cols), fsync=self._fsync)

        # 2. tasks (only grows), then the meta/episodes row: the commit point
        if len(job["tasks"]) > self._n_written_tasks:
            tx.replacing(self.root / "meta" / "tasks.parquet")
            self._write_tasks(job["tasks"])
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
        tx.replacing(ep_path)
        table = pa.Table.from_pylist(shard, schema=self._episodes_schema())
        atomic_write_parquet(ep_path, table, fsync=self._fsync)

        # 3. derived metadata: part of the transaction too, so info.json and stats.json never lag
        merged = merge_all([self._stats, stats])
        self._stats = {k: merged[k] for k in self._stat_keys if k in merged}  # spec order, as on reopening
        tx.replacing(self.root / "meta" / "stats.json")
        atomic_write_json(self.root / "meta" / "stats.json", stats_to_json(self._stats), fsync=self._fsync)
        tx.replacing(self.root / "meta" / "info.json")
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
            # LeRobot's image stats are (3, 1, 1): lists of lists of lists
            value = pa.list_(pa.list_(pa.list_(pa.float64()))) if key in self._image_keys else pa.list_(pa.float64())
            for name in (*STAT_NAMES, *QUANTILE_NAMES):
                fields.append(pa.field(f"stats/{key}/{name}", pa.list_(pa.int64()) if name == "count" else value))
        return pa.schema(fields)

    def _write_tasks(self, tasks: list[str]) -> None:
        atomic_write_parquet(self.root / "meta" / "tasks.parquet", tasks_table(tasks), fsync=self._fsync)
        self._n_written_tasks = len(tasks)

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
                "columns": dict(STORED_NAMES),
                "file_policy": "one_episode_per_file",
                "action_sources": list(ACTION_SOURCES),
                "video": self._video,
                "env_id": self.env_id,
            },
        }
        atomic_write_json(self.root / "meta" / "info.json", info, fsync=self._fsync)
