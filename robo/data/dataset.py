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

The code lives in three modules: `robo.data.format` (layout, columns, conversions), `robo.data.writer`
(`DatasetWriter`) and `robo.data.reader` (`Dataset`, `Windows`); this module keeps their public names.
"""

from robo.data.format import (
    ACTION_SOURCES,
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    INDEX_COLUMNS,
    ROBO_COLUMNS,
    ROBO_SCHEMA_VERSION,
    VIDEO_PATH,
    DatasetError,
)
from robo.data.reader import Dataset, Windows
from robo.data.writer import DatasetWriter

__all__ = [
    "ACTION_SOURCES",
    "CHUNKS_SIZE",
    "CODEBASE_VERSION",
    "DATA_PATH",
    "EPISODES_PATH",
    "INDEX_COLUMNS",
    "ROBO_COLUMNS",
    "ROBO_SCHEMA_VERSION",
    "VIDEO_PATH",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "Windows",
]
