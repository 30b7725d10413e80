"""SegmentStore: durable appends, torn tails, sealing, index rebuild, dedupe, kill -9 of a writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from robo.data.segments import SegmentError, SegmentStore

pytestmark = pytest.mark.timeout(60)


def episode(i: int, n: int = 7) -> dict[str, np.ndarray]:
    return {
        "obs": np.full((n, 4), i, np.float32),
        "action": np.arange(n * 2, dtype=np.float32).reshape(n, 2) + i,
        "done": np.arange(n) == n - 1,
        "policy_version": np.full(n, 10 * i, np.int64),
    }


def fill(root, k: int, **kw) -> SegmentStore:
    store = SegmentStore(root, **kw)
    for i in range(k):
        store.append(episode(i), {"uid": f"ep{i}", "success": i % 2 == 0})
    return store


def test_append_reopen_round_trip(tmp_path):
    fill(tmp_path, 5).close()
    store = SegmentStore(tmp_path)
    assert len(store) == 35 and len(store.records) == 5
    for i, (arrays, meta) in enumerate(store):
        assert meta == {"uid": f"ep{i}", "success": i % 2 == 0}
        for k, v in episode(i).items():
            np.testing.assert_array_equal(arrays[k], v)
            assert arrays[k].dtype == v.dtype
    assert store.has_uid("ep3") and not store.has_uid("ep9")
    arrays, meta = store.read(store.records[2])
    assert meta["uid"] == "ep2" and arrays["obs"][0, 0] == 2


def test_segments_seal_by_size_and_index_is_atomic_json(tmp_path):
    store = fill(tmp_path, 30, segment_bytes=1024)
    store.close()
    names = sorted(p.name for p in (tmp_path / "segments").iterdir())
    assert sum(n.endswith(".seg") for n in names) >= 3 and sum(n.endswith(".open") for n in names) <= 1
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["n_rows"] == 30 * 7
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temp files left behind
    assert len(SegmentStore(tmp_path)) == 30 * 7


def test_index_rebuilt_by_scanning_when_missing_or_corrupt(tmp_path):
    fill(tmp_path, 20, segment_bytes=1024).close()
    (tmp_path / "index.json").write_text("{ not json")
    store = SegmentStore(tmp_path)
    assert len(store) == 140 and [m["uid"] for _, m in store][:3] == ["ep0", "ep1", "ep2"]
    (tmp_path / "index.json").unlink()
    store = SegmentStore(tmp_path)
    assert len(store) == 140
    store.rebuild_index()
    assert json.loads((tmp_path / "index.json").read_text())["n_rows"] == 140


def test_torn_tail_of_active_segment_is_truncated(tmp_path):
    fill(tmp_path, 4).close()
    active = next((tmp_path / "segments").glob("*.open"))
    good_size = active.stat().st_size
    with open(active, "ab") as f:  # a crash in the middle of an append
        f.write(b"RSG1" + b"\x00" * 9)
    store = SegmentStore(tmp_path)
    assert len(store) == 28 and active.stat().st_size == good_size
    store.append(episode(4), {"uid": "ep4"})  # appending continues cleanly after the repair
    store.close()
    assert len(SegmentStore(tmp_path)) == 35


def test_crc_detects_corruption(tmp_path):
    store = fill(tmp_path, 3)
    store.close()
    active = next((tmp_path / "segments").glob("*.open"))
    data = bytearray(active.read_bytes())
    data[-5] ^= 0xFF  # flip a payload byte of the last record
    active.write_bytes(bytes(data))
    store = SegmentStore(tmp_path)
    assert len(store.records) == 2  # the corrupt record is not served
    with pytest.raises(ValueError, match="leading dim"):
        store.append({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="dtype"):
        store.append({"a": np.array([object()])})
    assert issubclass(SegmentError, ValueError)


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from robo.data.segments import SegmentStore
    store = SegmentStore(sys.argv[1], segment_bytes=4096)
    i = 0
    while True:
        store.append({"x": np.full((50, 8), i, np.float32)}, {"uid": f"e{i}"})
        print(i, flush=True)  # printed only after the append is durable
        i += 1
    """
)


def test_kill_9_while_appending_keeps_every_acknowledged_record(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    acked = -1
    t0 = time.monotonic()
    while acked < 60 and time.monotonic() - t0 < 30:
        acked = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    store = SegmentStore(tmp_path)
    uids = [m["uid"] for _, m in store]
    assert len(uids) >= acked + 1  # every acknowledged append survived (maybe one more)
    assert uids == [f"e{i}" for i in range(len(uids))]  # in order, no gap, no duplicate
    assert len(store) == 50 * len(uids)
