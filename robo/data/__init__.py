"""robo datasets: LeRobot v3.0 layout plus robo's per-step columns (see robo.data.dataset)."""

from robo.data.dataset import (
    ACTION_SOURCES,
    CODEBASE_VERSION,
    ROBO_SCHEMA_VERSION,
    Dataset,
    DatasetError,
    DatasetWriter,
    Windows,
)
from robo.data.stats import RunningStats
from robo.data.video import decode_frames, decode_video, encode_video
from robo.data.video_cache import VideoCacheConfig

__all__ = [
    "ACTION_SOURCES",
    "CODEBASE_VERSION",
    "ROBO_SCHEMA_VERSION",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "RunningStats",
    "VideoCacheConfig",
    "Windows",
    "decode_frames",
    "decode_video",
    "encode_video",
]
