"""`kill -9` during `robo collect` leaves a readable dataset holding every finished episode."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from robo.data import Dataset


def test_kill9_during_collect_leaves_readable_dataset(tmp_path):
    out = tmp_path / "demos"
    proc = subprocess.Popen([sys.executable, "-m", "robo.cli", "collect", "--task", "PandaLift-v0", "--episodes", "500",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            info = out / "meta" / "info.json"
            if info.is_file() and json.loads(info.read_text())["total_episodes"] >= 3:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("collect did not finish 3 episodes in time")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    ds = Dataset(out)
    assert ds.num_episodes >= 3
    for i in range(ds.num_episodes):
        ep = ds.episode(i)
        assert len(ep["action"]) > 0 and np.all(np.isfinite(ep["observation.state"]))
        assert ep["next.reward"][-1] == 1.0  # only complete (successful) episodes are visible
