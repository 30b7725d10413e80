"""Atomic file writes: the one temp-file-then-rename helper every robo writer uses.

A file written through `atomic_path` is either the complete new version or the old one (or absent):
the content goes to a hidden temporary sibling, is fsynced, renamed over the target, and the folder
is fsynced so the rename survives a power loss. If writing fails, the temporary file is removed and
the target is untouched.

    with atomic_path(run_dir / "agent.pt") as tmp:
        torch.save(state, tmp)
    atomic_write_json(run_dir / "state.json", state)

An update of several files that must land together or not at all (an episode: its videos, its data
file, the task list, the episode index, stats and info) goes through a `Transaction`: each new file is
registered before it is written, each file about to be replaced keeps its old version as a hard link,
and `rollback()` puts every one back, so a failure at any point (a full disk) leaves the files as they
were before the update.
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
    "Transaction",
    "atomic_path",
    "remove_empty_tree",
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


def backup_name(path: Path) -> Path:
    """Hidden sibling holding the previous version of `path` during a `Transaction`
    (`.name.tmp-<pid>-<tid>.bak`, so a writer that reopens the folder removes it like any temp file)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}.bak")


class Transaction:
    """Files written by one update, undone together if it fails.

        tx = Transaction()
        try:
            tx.creating(video); encode(video) ...; tx.replacing(index); atomic_write_json(index, ...)
        except BaseException:
            tx.rollback(); raise
        tx.commit()
    """

    def __init__(self) -> None:
        self._undo: list[tuple[Path, Path | None]] = []  # (target, backup of its old version or None)

    def creating(self, path: str | os.PathLike) -> None:
        """`path` is about to be written and did not exist: rollback removes it."""
        path = Path(path)
        if path.exists():
            self.replacing(path)
        else:
            self._undo.append((path, None))

    def replacing(self, path: str | os.PathLike) -> None:
        """`path` is about to be replaced: its current version is kept (a hard link: no data copied)."""
        path = Path(path)
        if not path.exists():
            self._undo.append((path, None))
            return
        backup = backup_name(path)
        backup.unlink(missing_ok=True)
        try:
            os.link(path, backup)
        except OSError:  # a file system without hard links: copy (fails cleanly when the disk is full)
            import shutil

            shutil.copy2(path, backup)
        self._undo.append((path, backup))

    def rollback(self) -> list[str]:
        """Restore every registered file to its state before the update, newest first; returns the
        problems met (best effort: one file that cannot be restored does not stop the others)."""
        problems = []
        folders = set()
        for target, backup in reversed(self._undo):
            try:
                if backup is None:
                    target.unlink(missing_ok=True)
                elif target.exists() and os.path.samefile(backup, target):
                    backup.unlink()  # never replaced (rename() between two links of one file does nothing)
                else:
                    os.replace(backup, target)
                folders.add(target.parent)
            except OSError as e:
                problems.append(f"{target}: {e}")
        for folder in folders:
            try:
                fsync_path(folder)
            except OSError:
                pass
        self._undo = []
        return problems

    def commit(self) -> None:
        """The update is complete: drop the kept versions."""
        for _, backup in self._undo:
            if backup is not None:
                backup.unlink(missing_ok=True)
        self._undo = []


def remove_empty_tree(root: Path, *, remove_root: bool) -> None:
    """Remove the lock and temporary files and the empty folders a failed creation left under `root`
    (and `root` itself if the writer made it); any other file stays."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_dir():
                path.rmdir()
            elif path.name.startswith("."):
                path.unlink()
        except OSError:
            pass
    if remove_root:
        try:
            root.rmdir()
        except OSError:
            pass
