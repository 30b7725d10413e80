"""Atomic file writes: the one temp-file-then-rename helper every robo writer uses.

A file written through `atomic_path` is either the complete new version or the old one (or absent):
the content goes to a hidden temporary sibling, is fsynced, renamed over the target, and the folder
is fsynced so the rename survives a power loss. If writing fails, the temporary file is removed and
the target is untouched.

    with atomic_path(run_dir / "agent.pt") as tmp:
        torch.save(state, tmp)
    atomic_write_json(run_dir / "state.json", state)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_parquet",
    "atomic_write_text",
    "fsync_path",
    "tmp_name",
]


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or folder by path (makes a write or a rename durable across power loss)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(path: Path) -> Path:
    """Hidden temporary sibling of `path`, unique per process and thread: `.name.tmp-<pid>-<tid>`.

    Keeps the suffix last (`.x.tmp-1-2.mp4`) when `path` has one, so tools that pick a format from
    the file name (PyAV, numpy's savez) still see it."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        yield tmp
        if fsync:
            fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_path(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode(), fsync=fsync)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, fsync: bool = True, indent: int | None = 2) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=indent) + "\n").encode(), fsync=fsync)


def atomic_write_parquet(path: str | os.PathLike, table: Any, *, fsync: bool = True) -> None:
    import pyarrow.parquet as pq

    with atomic_path(path, fsync=fsync) as tmp:
        pq.write_table(table, tmp)
