"""A full disk (ENOSPC) at any write of an episode (issue 22): the dataset on disk stays exactly its
committed episodes (files, info.json totals, stats.json, tasks), and recording resumes on it.

The failure is injected at each write point in turn: every call that writes an episode's files (video,
data, tasks, episode index, stats, info), and every fsync (a write that fails once the bytes are
written, or a rename whose folder fsync fails after the new version is already in place)."""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import frame_at, make_spec

import robo.data.atomic as atomic
import robo.data.writer as writer
from robo.data import Dataset, DatasetError, DatasetWriter

SPEC = make_spec(camera=True)


def record(root: Path, episodes: list[tuple[int, str]]) -> None:
    """Append episodes (index, task) of 6 frames each."""
    with DatasetWriter(root, SPEC, fps=10, task="peg") as w:
        for e, task in episodes:
            for t in range(6):
                w.add_frame(frame_at(e, t, SPEC))
            w.save_episode(success=True, task=task)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones included) but the writer's lock, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".writer.lock"}


@pytest.fixture(scope="module")
def two_episodes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("enospc") / "ref2"
    record(root, [(0, "peg"), (1, "peg")])
    return root


def enospc_at(k: int, counter: list[int]) -> Callable:
    """A wrapper factory: the k-th call (counted in `counter[0]` across all wrapped functions) raises."""
    def wrap(fn):
        def wrapped(*args, **kwargs):
            counter[0] += 1
            if counter[0] == k:
                raise OSError(errno.ENOSPC, "No space left on device")
            return fn(*args, **kwargs)
        return wrapped
    return wrap


WRITE_CALLS = [(writer, "encode_video"), (writer, "atomic_write_parquet"), (writer, "atomic_write_json")]
FSYNC_CALLS = [(atomic, "fsync_path")]


def count_calls(root: Path, targets, monkeypatch) -> int:
    counter = [0]
    wrap = enospc_at(0, counter)  # never raises
    with monkeypatch.context() as m:
        for module, name in targets:
            m.setattr(module, name, wrap(getattr(module, name)))
        record(root, [(2, "stack")])
    return counter[0]


@pytest.mark.parametrize("targets", [WRITE_CALLS, FSYNC_CALLS], ids=["writes", "fsyncs"])
def test_a_full_disk_at_any_write_point_leaves_exactly_the_committed_episodes(
    two_episodes: Path, tmp_path: Path, monkeypatch, targets
) -> None:
    probe = tmp_path / "probe"
    shutil.copytree(two_episodes, probe)
    n_points = count_calls(probe, targets, monkeypatch)
    assert n_points >= (6 if targets is WRITE_CALLS else 10)  # video, data, tasks, index, stats, info (+ folders)
    reference = Dataset(probe)  # what the third episode looks like when nothing fails
    before = snapshot(two_episodes)
    for k in range(1, n_points + 1):
        root = tmp_path / f"k{k}"
        shutil.copytree(two_episodes, root)
        counter = [0]
        wrap = enospc_at(k, counter)
        with monkeypatch.context() as m:
            for module, name in targets:
                m.setattr(module, name, wrap(getattr(module, name)))
            with pytest.raises(DatasetError, match="No space left on device") as err:
                record(root, [(2, "stack")])
        assert "\n" not in str(err.value)
        assert snapshot(root) == before, f"failure at write point {k} left the dataset changed"
        ds = Dataset(root)
        assert ds.num_episodes == 2 and json.loads((root / "meta" / "info.json").read_text())["total_episodes"] == 2
        # recording resumes where it stopped and gives the dataset an uninterrupted run gives
        record(root, [(2, "stack")])
        again = Dataset(root)
        assert again.num_episodes == 3 and again.num_frames == reference.num_frames
        assert again.stats == reference.stats
        assert (root / "meta" / "stats.json").read_text() == (probe / "meta" / "stats.json").read_text()
        assert (root / "meta" / "info.json").read_text() == (probe / "meta" / "info.json").read_text()
        assert pq.read_table(root / "meta" / "tasks.parquet").equals(pq.read_table(probe / "meta" / "tasks.parquet"))
        shutil.rmtree(root)


def test_reopening_after_a_crash_removes_what_the_interrupted_episode_left(two_episodes: Path, tmp_path: Path) -> None:
    """kill -9 between an episode's files and its commit, or between the commit and stats/info: the next
    writer removes the orphans and brings info.json, stats.json and the task list back in line."""
    root = tmp_path / "crashed"
    shutil.copytree(two_episodes, root)
    before = snapshot(root)
    (root / "data" / "chunk-000" / "file-002.parquet").write_bytes(before["data/chunk-000/file-001.parquet"])
    video = root / "videos" / "observation.images.front" / "chunk-000"
    (video / "file-002.mp4").write_bytes(before["videos/observation.images.front/chunk-000/file-001.mp4"])
    (video / ".file-003.tmp-1-2.mp4").write_bytes(b"half")
    (root / "meta" / "stats.json").unlink()
    info = json.loads((root / "meta" / "info.json").read_text())
    (root / "meta" / "info.json").write_text(json.dumps({**info, "total_episodes": 0, "total_frames": 0}))
    with DatasetWriter(root, SPEC, fps=10, task="peg"):
        pass
    assert snapshot(root) == before


def test_a_dataset_whose_creation_fails_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "atomic_write_json", full)
    with pytest.raises(OSError, match="No space left"):
        DatasetWriter(tmp_path / "new", SPEC, fps=10, task="peg")
    assert not (tmp_path / "new").exists()
