"""robo datasets: LeRobot v3.0 as LeRobot 0.4 writes it, plus robo's per-step columns, with a crash-safe
writer. The layout, the columns (LeRobot's and robo's `robo.*`) and the crash-safety argument are
described in `robo.data.format`.

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
    STORED_NAMES,
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
    "STORED_NAMES",
    "VIDEO_PATH",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "Windows",
]
