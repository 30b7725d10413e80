"""kill -9 while recording: every completed episode stays readable, at most the one in flight is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CAM, action_at, frame_at, image_at, state_at

from robo.data import Dataset, DatasetWriter

HERE = Path(__file__).parent

# Writes 12-frame episodes with a camera forever; prints "saved e" after save_episode returns and
# "done e" once the background writer has finished episode e. One os.write per line: print() under
# PYTHONUNBUFFERED=1 writes "saved", " ", "e" and the newline separately, so a kill could cut a line.
CHILD = """
import os
import sys
sys.path.insert(0, {here!r})
from conftest import frame_at, make_spec
from robo.data import DatasetWriter
spec = make_spec(camera=True)
w = DatasetWriter({root!r}, spec, fps=10, task="peg")
e = 0
while True:
    for t in range(12):
        w.add_frame(frame_at(e, t, spec))
    w.save_episode(success=True)
    os.write(1, b"saved %d\\n" % e)
    if e % 2 == 0:
        w.wait()
        os.write(1, b"done %d\\n" % e)
    e += 1
"""


def check_episodes(ds: Dataset) -> None:
    for i, e in enumerate(ds.episode_indices):
        ep = ds.episode(i)
        assert len(ep["action"]) == 12
        np.testing.assert_array_equal(ep["observation.state"], np.stack([state_at(e, t) for t in range(12)]))
        np.testing.assert_array_equal(ep["action"], np.stack([action_at(e, t) for t in range(12)]))
        np.testing.assert_array_equal(ep["episode_index"], np.full(12, e))
        want = np.stack([image_at(e, t) for t in range(12)]).astype(float)
        assert np.abs(ep[CAM] - want).mean() < 3.0


@pytest.mark.parametrize("extra_delay_s", [0.0, 0.037, 0.11])
def test_kill_9_mid_recording(tmp_path: Path, extra_delay_s: float) -> None:
    root = tmp_path / "ds"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(here=str(HERE), root=str(root))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    done: list[int] = []
    saved: list[int] = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while len(done) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            kind, e = line.split()
            (done if kind == "done" else saved).append(int(e))
        time.sleep(extra_delay_s)  # land somewhere inside the next episodes' writes
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(done) == 3, "child did not finish 3 episodes"
    for line in proc.stdout.read().splitlines():  # what it printed before dying
        kind, e = line.split()
        (done if kind == "done" else saved).append(int(e))

    ds = Dataset(root)
    present = ds.episode_indices
    assert set(range(max(done) + 1)) <= set(present)  # everything known to be written survived
    assert present == list(range(len(present)))  # episodes are committed in order
    assert max(present) <= max(saved)  # and nothing that was not handed over
    check_episodes(ds)
    assert ds.stats["action"]["count"] == [12 * len(present)]

    # recording resumes on the crashed dataset
    with DatasetWriter(root, ds.spec, fps=10, task="peg") as w:
        e = w.next_episode_index
        for t in range(12):
            w.add_frame(frame_at(e, t, ds.spec))
        w.save_episode()
    ds2 = Dataset(root)
    assert ds2.episode_indices == [*present, e]
    check_episodes(ds2)
