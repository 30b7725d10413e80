"""`Dataset` and `Windows`: read-only access to robo and LeRobot v3.0 datasets (format in robo.data.format)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from robo.data.format import (
    CODEBASE_VERSION,
    FROM_STORED,
    INDEX_COLUMNS,
    DatasetError,
    _column_to_numpy,
    _one_line,
    _read_episode_rows,
    _read_json,
    _read_parquet,
    _row_stats,
    _spec_from_info,
    read_tasks,
    stored_names,
)
from robo.data.stats import merge_all, stats_to_json
from robo.data.video import decode_frames
from robo.data.video_cache import VideoBlocks, VideoCacheConfig, VideoSource, read_ahead
from robo.spec import ACTION, Spec

if TYPE_CHECKING:
    from robo.data.shuffle import ShuffledWindows


# ----------------------------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------------------------
class Dataset:
    """Read-only view of a dataset written by DatasetWriter (any robo schema) or by LeRobot 0.4's
    `LeRobotDataset` (several episodes per file, AV1 video, its tasks file). Validates on open and
    never modifies files. Episodes sharing a file are sliced by their meta/episodes row.

    robo's columns come back under their API names (`action_source`, `base_action`, ...; see
    robo.data.format.STORED_NAMES) whatever the schema stored them as.

    Low-dim columns of all present episodes are loaded into memory on open (they are ~1/1000 of
    the video: an hour at 30 fps of a 20-d state and 7-d action is 13 MB). Videos are decoded when
    used: `episode(i)` decodes that episode's frames; `windows()` decodes the cameras whole when
    they fit its cache budget, else in blocks on demand (robo.data.video_cache). Episodes are
    addressed by position 0..num_episodes-1 (`episode_indices[i]` gives the stored `episode_index`).
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
        self.schema_version: int | None = (self.info.get("robo") or {}).get("schema_version")
        """robo's schema of the columns it adds (None: not written by robo)."""
        self._api_names = {stored: api for api, stored in stored_names(self.info).items()}
        self._image_keys = self.spec.image_keys
        if self._image_keys and not self._video_path:
            raise DatasetError(f"{info_path}: has camera features but no video_path")

        tasks_path = self.root / "meta" / "tasks.parquet"
        self.tasks: list[str] = read_tasks(tasks_path) if tasks_path.exists() else []

        self.episodes: list[dict[str, Any]] = [r for r in _read_episode_rows(self.root) if self._files_exist(r)]
        self._load_lowdim()
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
                    values = _column_to_numpy(table.column(name))
                    if name in FROM_STORED and name in self._api_names:
                        values = FROM_STORED[name](values)
                    parts.setdefault(self._api_names.get(name, name), []).append(values)
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

    def _video_source(self, key: str, i: int) -> VideoSource:
        """Episode `i`'s frames of camera `key`: its mp4 (LeRobot's may hold several episodes) and first frame."""
        row = self.episodes[i]
        first = int(round(float(row.get(f"videos/{key}/from_timestamp") or 0.0) * float(self.fps)))
        return VideoSource(self._video_file(row, key), first)

    def _decode(self, key: str, i: int) -> np.ndarray:
        if key in self._image_arrays:
            s = self._starts[i]
            return self._image_arrays[key][s : s + self._lengths[i]]
        src = self._video_source(key, i)
        n = int(self._lengths[i])
        try:
            return decode_frames(src.path, src.first, src.first + n, self.fps, tuple(self.spec[key].shape),
                                 threaded=True)
        except Exception as e:  # noqa: BLE001 - av.error.* and frame-count errors
            raise DatasetError(
                f"{src.path}: cannot decode video of episode {self.episodes[i]['episode_index']} ({_one_line(e)})"
            ) from e

    def _video_nbytes(self, keys: Sequence[str]) -> int:
        """Bytes of every frame of `keys` decoded."""
        return sum(self.num_frames * int(np.prod(self.spec[k].shape)) for k in keys)

    def load_videos(self, keys: Sequence[str] | None = None) -> None:
        """Decode every episode's video for `keys` (default: all cameras) into one array each, kept."""
        for key in self._image_keys if keys is None else keys:
            if key in self._image_arrays:
                continue
            h, w, c = self.spec[key].shape
            out = np.empty((self.num_frames, h, w, c), dtype=np.uint8)
            for i in range(self.num_episodes):
                s = self._starts[i]
                out[s : s + self._lengths[i]] = self._decode(key, i)
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
    def stats(self) -> dict[str, dict[str, list[Any]]]:
        """Per-feature min/max/mean/std/count/q01..q99 over the present episodes (see robo.data.stats),
        for every feature with stats, in LeRobot's layout (images (3, 1, 1), counted in frames).

        Merged from the per-episode stats in meta/episodes, so always consistent with the
        episodes present; `meta/stats.json` is used only for datasets without them.
        """
        if self._stats is None:
            # image stats in robo's pre-schema-2 layout ((3,), counted in pixels) are recognised by shape
            pixels = {k: self.spec[k].shape[0] * self.spec[k].shape[1] for k in self._image_keys}
            per_ep = [_row_stats(r, pixels_per_frame=pixels) for r in self.episodes]
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

    def column(self, name: str) -> np.ndarray:
        """One low-dim column over every present episode, in order (a copy; the index `windows` use)."""
        if name not in self._columns:
            raise KeyError(f"column '{name}' not in {self.root} (columns: {list(self._columns)})")
        return self._columns[name].copy()

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
        *,
        video: VideoCacheConfig | None = None,
    ) -> Windows:
        """Training windows, one per frame t of the chosen episodes (default all).

        Each item: obs keys (default: every spec key except `action`) -> (To, ...) for steps
        t-To+1..t; `action` -> (T, Da) for steps t-To+1..t-To+T; `action_is_pad` -> (T,) bool.
        Steps outside the episode repeat its edge frame.

        Cameras: decoded whole, once, when their decoded frames fit `video.cache_mb` (default
        `VideoCacheConfig()`); otherwise in blocks on demand within that budget (see
        robo.data.video_cache; iterate `Windows.epoch()` / `.shuffled()` for speed). Same values either way.
        """
        if n_obs_steps < 1 or horizon < 1:
            raise ValueError(f"windows: n_obs_steps={n_obs_steps} and horizon={horizon} must be >= 1")
        keys = [k for k in self.spec.features if k != ACTION] if keys is None else list(keys)
        for k in keys:
            if k not in self._columns and k not in self._image_keys:
                raise KeyError(f"windows: unknown key '{k}'; have {self.columns}")
        video = VideoCacheConfig() if video is None else video
        cams = [k for k in keys if k in self._image_keys and k not in self._image_arrays]
        if cams and self._video_nbytes(cams) <= video.cache_bytes:
            self.load_videos(cams)
            cams = []
        blocks = None
        if cams:  # larger than the budget: blocks on demand
            blocks = VideoBlocks(
                {k: [self._video_source(k, i) for i in range(self.num_episodes)] for k in cams},
                {k: tuple(self.spec[k].shape) for k in cams},
                self._lengths, self._starts, self.fps, n_obs_steps, video,
            )
        in_ram = {**self._columns, **self._image_arrays}
        arrays = {k: in_ram[k] for k in keys if k not in cams}
        eps = range(self.num_episodes) if episodes is None else [int(e) % max(self.num_episodes, 1) for e in episodes]
        return Windows(
            arrays,
            self._columns.get(ACTION, np.zeros((0, 0), np.float32)),
            self._starts,
            self._lengths,
            list(eps),
            n_obs_steps,
            horizon,
            blocks,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.root)!r}, episodes={self.num_episodes}, frames={self.num_frames}, "
            f"fps={self.fps}, keys={list(self.spec.features)})"
        )


class Windows:
    """Map-style dataset of (obs history, action chunk) windows; works with torch DataLoader.

    Item i is a dict of numpy arrays: obs keys (To, ...), `action` (T, Da) float32,
    `action_is_pad` (T,) bool. Built by `Dataset.windows`. Cameras come from `arrays` (decoded whole)
    or from `video` (blocks decoded on demand, robo.data.video_cache); `epoch(rng)` and `shuffled()`
    give every window once in an order that keeps the blocks' decoding cheap.
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
        video: VideoBlocks | None = None,
    ) -> None:
        self.arrays = arrays
        self.actions = actions
        self.video = video
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
        self._block = np.zeros(0, np.int64)
        if video is not None and len(self._t):
            episode = cat([np.full(int(lengths[e]), e) for e in episodes])
            self._block = video.block_of(episode, self._t - self._lo)

    def __len__(self) -> int:
        return len(self._t)

    def chunk_ok(self, frame_ok: np.ndarray) -> np.ndarray:
        """(len,) bool: windows whose whole action chunk (padding repeats the episode's edge frame, as in
        the item) lies on frames where `frame_ok` (num_frames,) is True."""
        frame_ok = np.asarray(frame_ok, bool)
        idx = np.clip(self._t[:, None] + self._act_offsets[None, :], self._lo[:, None], self._hi[:, None] - 1)
        return frame_ok[idx].all(axis=1) if len(self._t) else np.zeros(0, bool)

    def keep(self, mask: np.ndarray) -> Windows:
        """Only the windows where `mask` (len,) is True (this object, filtered in place)."""
        mask = np.asarray(mask, bool)
        if mask.shape != self._t.shape:
            raise ValueError(f"keep: mask has shape {mask.shape}, expected ({len(self)},)")
        self._t, self._lo, self._hi = self._t[mask], self._lo[mask], self._hi[mask]
        if len(self._block):
            self._block = self._block[mask]
        return self

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)}")
        t, lo, hi = self._t[i], self._lo[i], self._hi[i]
        obs_idx = np.clip(t + self._obs_offsets, lo, hi - 1)
        act_raw = t + self._act_offsets
        out = {k: v[obs_idx] for k, v in self.arrays.items()}
        if self.video is not None:
            block = int(self._block[i])
            frames = self.video.cache().get(block)
            local = obs_idx - self.video.global_first[block]
            for k, v in frames.items():
                out[k] = v[local]
        out[ACTION] = self.actions[np.clip(act_raw, lo, hi - 1)]
        out["action_is_pad"] = (act_raw < lo) | (act_raw >= hi)
        return out

    def epoch(self, rng: np.random.Generator, *, shard: tuple[int, int] = (0, 1)) -> Iterator[dict[str, np.ndarray]]:
        """Every window once (of shard `(k, n)`: the k-th of n disjoint parts), shuffled by `rng`.

        Cameras in RAM: a uniform permutation (`rng.permutation(len(self))`). Cameras in blocks: the
        blocks in a random order, in groups of half the cache, each group's windows shuffled, the next
        group decoding ahead; each frame is decoded about once. Shards need the same `rng` state.
        """
        k, n = shard
        if not 0 <= k < n:
            raise ValueError(f"epoch: shard {shard} must be (k, n) with 0 <= k < n")
        if self.video is None:
            for i in rng.permutation(len(self))[k::n]:
                yield self[int(i)]
            return
        order = np.argsort(self._block, kind="stable")  # windows grouped by block
        ids, first = np.unique(self._block[order], return_index=True)
        bounds = dict(zip(ids.tolist(), zip(first.tolist(), [*first[1:].tolist(), len(order)])))
        cache = self.video.cache()
        groups = self.video.groups(rng.permutation(ids)[k::n])
        for group in read_ahead(groups, cache):
            idx = np.concatenate([order[slice(*bounds[int(b)])] for b in group])
            for i in rng.permutation(idx):
                yield self[int(i)]

    def shuffled(self, seed: int = 0) -> ShuffledWindows:
        """A torch `IterableDataset` of `epoch()`: one epoch per iteration, each DataLoader worker a
        shard with its own cache (robo.data.shuffle)."""
        from robo.data.shuffle import ShuffledWindows

        return ShuffledWindows(self, seed)
