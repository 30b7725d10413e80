"""`robo collect --teleop keyboard`: a scripted 'human' at the terminal boundary records a dataset."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from robo.hal.lease import LeaseError
from robo.teleop.session import run_human_collect
from robo.teleop.terminal import TerminalKeys

pytest.importorskip("robo.sim")
from robo.data import Dataset  # noqa: E402


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "rt"))


@pytest.fixture
def cell_file(tmp_path):
    p = tmp_path / "kb_cell.yaml"
    p.write_text(textwrap.dedent("""
        name: kb_cell
        resources:
          arm: {type: sim_panda}
          keyboard: {type: keyboard, config: {hold_s: 0.25}, wiring: {controls: arm}}
    """))
    return p


def collect_args(cell, out, episodes: int) -> argparse.Namespace:
    return argparse.Namespace(task="PandaPegInsert-v0", teleop="keyboard", episodes=episodes, out=str(out),
                              cell=str(cell), fps=10, rerun=False, cameras="", image_size=64, seed=0,
                              keep_failures=False)


def test_keyboard_session_records_success_failure_and_rerecord(tmp_path, cell_file):
    r, w = os.pipe()
    keys = TerminalKeys(r)
    # what the operator types, by (episode attempt, step of that attempt)
    script = {
        (1, 1): b"ew", (1, 2): b"w", (1, 3): b"w", (1, 4): b"r", (1, 7): b"y",  # success
        (2, 1): b"a", (2, 3): b"x",  # throw this one away
        (3, 1): b"s", (3, 2): b"s", (3, 5): b"n",  # failure
    }
    attempt = {"n": 0, "last_ep": None, "last_steps": 0}
    lines: list[str] = []

    def on_step(state):
        if state["steps"] <= attempt["last_steps"] or attempt["last_ep"] != state["episode"]:
            attempt["n"] += 1
        attempt["last_ep"], attempt["last_steps"] = state["episode"], state["steps"]
        lines.append(f"{state['episode']} {state['fps']:.1f}")
        key = script.get((attempt["n"], state["steps"]))
        if key:
            os.write(w, key)

    out = tmp_path / "human"
    try:
        rc = run_human_collect(collect_args(cell_file, out, 2), keys=keys, stream=open(os.devnull, "w"),
                               on_step=on_step)
    finally:
        keys.stop()
        os.close(w)
        os.close(r)
    assert rc == 0
    assert attempt["n"] == 3  # the re-recorded attempt was run again
    ds = Dataset(out)
    assert ds.num_episodes == 2
    ep0, ep1 = ds.episode(0), ds.episode(1)
    assert set(ep0["action_source"]) == {"human"} and set(ep1["action_source"]) == {"human"}
    a0 = np.asarray(ep0["action"])
    assert a0[:, 0].max() > 0.01 and a0[:, 2].max() > 0.01  # w (+x) and r (+z) were recorded
    assert np.asarray(ep1["action"])[:, 0].min() < -0.01  # s (-x)
    assert len(a0) >= 5  # frames from the first motion on, until 'y'
    assert [row["success"] for row in ds.episodes] == [True, False]  # 'y' then 'n'
    assert float(lines[-1].split()[1]) == pytest.approx(10.0, rel=0.3)  # ran in real time at 10 Hz


def test_crash_safe_and_leased_while_running(tmp_path, cell_file):
    out = tmp_path / "crash"
    cmd = [sys.executable, "-m", "robo.cli", "collect", "--task", "PandaPegInsert-v0", "--teleop", "keyboard",
           "--cell", str(cell_file), "--episodes", "5", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ.copy())
    try:
        def type_(keys: bytes, pause: float = 0.15) -> None:
            for k in keys:
                proc.stdin.write(bytes([k]))
                proc.stdin.flush()
                time.sleep(pause)

        deadline = time.monotonic() + 60
        while not (out / "meta" / "info.json").exists():  # the session is up once the writer exists
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        type_(b"ewwwwy")
        while True:
            try:
                if Dataset(out).num_episodes == 1:
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline, "episode 1 was not written"
            time.sleep(0.1)
        # a second job asking for the same arm is refused, naming the running collect
        with pytest.raises(LeaseError) as e:
            run_human_collect(collect_args(cell_file, tmp_path / "other", 1), keys=TerminalKeys(None),
                              stream=open(os.devnull, "w"))
        assert f"pid {proc.pid}" in str(e.value) and "collect" in str(e.value)
        type_(b"wwww", 0.1)  # episode 2 in progress ...
        os.kill(proc.pid, signal.SIGKILL)  # ... when the process dies
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    ds = Dataset(out)
    assert ds.num_episodes == 1 and ds.num_frames >= 4  # the finished episode survived intact
    assert set(ds.episode(0)["action_source"]) == {"human"}
    # the dead process's leases expired: the cell can be used again
    from robo.hal.cell import Cell

    with Cell.load(cell_file).acquire(job="after") as held:
        assert len(held.leases) == 2


def test_leader_arm_session_moves_the_task_arm_towards_the_leader(tmp_path, monkeypatch):
    r, w = os.pipe()
    keys = TerminalKeys(r)
    seen = {}

    def on_step(state):
        if state["steps"] == 1:
            seen["device"] = state["device"]
            leader_arm = cell_ref["cell"]["leader_arm"]
            q = leader_arm.joint_positions()
            q[0] += 0.3  # the person swings the leader's base joint
            leader_arm.set_joint_positions(q)
        if state["steps"] == 12:
            os.write(w, b"y")

    import robo.teleop.session as session

    cell_ref = {}
    real_load = session.Cell.load

    def load(path):
        cell_ref["cell"] = real_load(path)
        return cell_ref["cell"]

    args = collect_args("sim_panda_leader", tmp_path / "lead", 1)
    args.teleop = "leader"
    monkeypatch.setattr(session.Cell, "load", staticmethod(load))  # keep a handle on the session's cell
    try:
        rc = run_human_collect(args, keys=keys, stream=open(os.devnull, "w"), on_step=on_step)
    finally:
        keys.stop()
        os.close(w)
        os.close(r)
    assert rc == 0 and "ENABLED" in seen["device"]
    a = np.asarray(Dataset(tmp_path / "lead").episode(0)["action"])
    assert np.abs(a[:, 1]).max() > 0.02  # the follower was sent sideways (+y) towards the swung leader
    assert a[:, 1].sum() > 0.05


def test_cell_env_reads_arm_and_aligned_cameras():
    from robo.hal.cell import Cell
    from robo.teleop.session import CellEnv

    cell = Cell.from_dict({"name": "ce", "resources": {
        "arm": {"type": "sim_panda"},
        "front": {"type": "mujoco_camera", "config": {"camera": "front", "width": 32, "height": 32, "fps": 20},
                  "wiring": {"sim": "arm"}},
    }})
    with cell.acquire(), cell:
        env = CellEnv(cell, cell["arm"], tolerance_s=0.1)
        obs, _ = env.reset()
        assert obs["observation.state"].shape == (15,) and obs["observation.images.front"].shape == (32, 32, 3)
        assert set(env.robo_spec.features) == {"observation.state", "observation.images.front", "action"}
        obs2, reward, term, trunc, _ = env.step(np.array([0.03, 0, 0, 0, 0, 0, -1], np.float32))
        assert obs2["observation.state"][8] > obs["observation.state"][8]  # tcp x moved
        assert (reward, term, trunc) == (0.0, False, False)
