"""`robo run` on the sim cell (real time, real processes, loopback): recorded episodes match what the arm
executed, Ctrl-C ends in a controller hold with a readable dataset, and a policy server that dies
mid-episode leaves the arm in the controller's watchdog hold."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from cell_helpers import LIFT, write_cell
from transport_helpers import free_port, spawn, stop, wait_for

from robo.data import Dataset
from robo.hal import lease

pytestmark = pytest.mark.timeout(300)


def test_robo_run_records_what_was_executed_and_sigint_ends_in_a_hold(lift_bc, tmp_path):
    """Until stopped: the finished episodes are recorded exactly as the arm executed them; Ctrl-C mid-episode
    ends in the controller's own hold, a readable dataset (the episode in flight dropped), the lease released."""
    ckpt = lift_bc[1]["checkpoint"]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "robo.cli", "run", "--cell", "sim_panda", "--policy", str(ckpt),
           "--episodes", "0", "--cameras", "front", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def episodes_on_disk(n: int) -> bool:
            try:
                return Dataset(out / "dataset").num_episodes >= n
            except Exception:  # noqa: BLE001 - not created yet
                return False

        wait_for(lambda: episodes_on_disk(2), 120, "two recorded episodes")
        assert lease.holders("sim_panda:sim_panda/arm")[0].pid == proc.pid  # held for the whole run
        time.sleep(0.5)  # mid-episode
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    summary = json.loads((out / "run.json").read_text())
    assert summary["ended"] == "interrupted"
    ctrl = summary["controller"][0]
    assert ctrl["hold_confirmed"] and ctrl["held"] and ctrl["mode"] == "hold"  # the controller's own state
    ds = Dataset(out / "dataset")  # validates the layout and metadata
    n = len(summary["episodes"])
    assert ds.num_episodes == n >= 2  # finished episodes kept, the one in flight dropped
    steps = np.load(out / "steps.npz")
    sent_ok = np.isfinite(steps["dispatched"]).all(axis=1)  # steps whose action the arm executed
    finished = steps["episode"] < n
    assert ds.num_frames == (sent_ok & finished).sum()
    # every step is logged but one met by the controller's hold (it sent nothing and ended its episode)
    assert finished.sum() == sum(e["length"] - e["hold"] for e in summary["episodes"])
    assert "observation.images.front" in ds.spec.features and ds.spec["observation.state"].shape == (18,)
    for i, result in enumerate(summary["episodes"]):
        ep, mine = ds.episode(i), (steps["episode"] == i) & sent_ok
        # the recorded action is exactly the one the arm's exec thread dispatched to the controller
        np.testing.assert_array_equal(ep["action"], steps["dispatched"][mine])
        sent = steps["sent"][mine]  # after the arm's limits: the deltas (cut at the workspace box), a binary gripper
        assert np.all(np.abs(sent[:, :3]) <= np.abs(ep["action"][:, :3]) + 1e-6)
        assert np.isclose(sent[:, :3], ep["action"][:, :3], atol=1e-6).mean() > 0.8
        assert np.array_equal(np.sign(sent[:, 6]), np.where(ep["action"][:, 6] > 0, 1.0, -1.0))
        assert (ep["action_source"] == "policy").all() and (ep["policy_version"] == 0).all()
        assert not ep["next.done"][:-1].any() and ep["next.reward"][:-1].sum() == 0
        if not (result["hold"] or result["dropped"]):  # the episode's last step was executed
            assert ep["next.done"][-1] and ep["next.reward"][-1] == float(result["success"])
        assert ep["observation.images.front"].shape[1:] == (64, 64, 3)
        dt = np.diff(ep["capture_timestamp"])
        assert 0.07 < np.median(dt) < 0.2  # one observation per 0.1 s control period: real time (s)
    # every executed step, and nothing else but the final hold's no-motion target, reached the controller
    # (+1 at most: Ctrl-C between a send and its log row)
    assert sent_ok.sum() + 1 <= ctrl["commands_accepted"] <= sent_ok.sum() + 2 and ctrl["rejected_nonfinite"] == 0
    assert sent_ok.mean() > 0.9  # an action is dropped only when the arm's exec thread starves a period
    assert summary["obs_age_ms"]["p50"] > 0 and summary["cmd_age_ms"]["p50"] >= 0
    assert lease.holders("sim_panda:sim_panda/arm") == []  # released at exit


def test_a_dead_policy_server_ends_in_a_hold_within_the_watchdog_timeout(lift_bc, tmp_path):
    from robo.cells import CellEnv
    from robo.learn.residual_env import ResidualVecEnv
    from robo.runtime.remote_policy import RemotePolicy

    ready = tmp_path / "ready"
    server = spawn(["-m", "robo.cli", "serve", "--policy", str(lift_bc[1]["checkpoint"]), "--bind", f"tcp://127.0.0.1:{free_port()}",
                    "--ready-file", str(ready), "--log-level", "WARNING"])
    env = envs = None
    try:
        wait_for(ready.exists, 60, "robo serve")
        remote = RemotePolicy(ready.read_text(), timeout_s=1.0, retries=0)
        env = CellEnv(write_cell(tmp_path / "c.yaml"), LIFT)
        envs = ResidualVecEnv(LIFT, remote, 1, 0, env_fn=lambda i: env, executor_mode="async")
        failure: list[BaseException] = []

        def act() -> None:  # the robot side: served chunks, executed asynchronously
            try:
                obs, base = envs.reset()
                while True:
                    base = envs.step(base).base
            except Exception as e:  # noqa: BLE001 - the request to the dead server fails
                failure.append(e)

        thread = threading.Thread(target=act, daemon=True)
        thread.start()
        wait_for(lambda: env.n_steps >= 5, 60, "five steps")  # mid-episode: the weak base takes >= 15 steps
        server.kill()  # the policy server dies mid-episode (SIGKILL: no goodbye)
        server.wait(10)
        timeout = env.arm.watchdog_timeout_s()
        wait_for(lambda: env.arm.held, 30, "the controller's hold")
        t_hold = time.time()
        ctrl = env.arm.ctrl
        assert ctrl.state()["mode"] == "hold" and ctrl.events()["watchdog_trips"] == 1
        # the hold came from the watchdog, one timeout after the last command (slack: polling on a loaded CPU)
        last = env.arm.executed[-1].t_sent
        assert timeout - 0.05 <= t_hold - last <= timeout + 0.3, (t_hold - last, timeout)
        n = ctrl.events()["commands_accepted"]
        thread.join(30)
        assert failure and not thread.is_alive()  # the actor side saw the server fail
        assert ctrl.events()["commands_accepted"] == n and env.arm.held  # nothing moved the arm since
    finally:
        if envs is not None:
            envs.close()
        if server.poll() is None:
            stop(server)
    assert env.final_controller["hold_confirmed"]
