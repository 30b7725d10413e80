"""CellEnv on a sim cell: the task's spaces and initial states, real-time steps through the C++ loop,
holds asserted from the controller's own state, unsafe actions refused in Python and in C++, leases,
and the operator's procedure (go, marks, pause, stop) as a real cell runs it."""

from __future__ import annotations

import threading
import time

import gymnasium as gym
import numpy as np
import pytest
from cell_helpers import LIFT, write_cell

import robo.sim  # noqa: F401  (registers the tasks)
from robo.cells import CellEnv, Operator, OperatorStop, UnsafeActionError
from robo.hal import lease
from robo.spec import STATE

pytestmark = pytest.mark.timeout(180)
DOWN = np.array([0, 0, -0.01, 0, 0, 0, -1], np.float32)  # 1 cm down per step, gripper open


def accepted(env: CellEnv) -> int:
    return int(env.arm.ctrl.events()["commands_accepted"])


def wait_until(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(cond())


def test_sim_cell_is_the_task_in_real_time(sim_cell):
    fast = gym.make(LIFT)
    env = CellEnv(sim_cell, LIFT)
    try:
        u = fast.unwrapped
        assert env.robo_spec[STATE].names == u.robo_spec[STATE].names  # a fast-path policy fits it
        np.testing.assert_array_equal(env.action_space.low, fast.action_space.low)
        np.testing.assert_array_equal(env.action_space.high, fast.action_space.high)
        assert env.observation_space["observation.images.front"].shape == (64, 64, 3)
        assert env.max_steps == fast.spec.max_episode_steps and env.control_hz == 10
        for seed in (3, 4):  # the same seed places the same scene as the fast path
            obs, _ = env.reset(seed=seed)
            ref, _ = fast.reset(seed=seed)
            np.testing.assert_array_equal(obs[STATE], ref[STATE])
        assert env.arm.loop_running  # the C++ thread owns the physics
        frames = [obs["observation.images.front"]]
        t0, sim0 = time.monotonic(), env.arm.sim_time
        for _ in range(10):
            obs, reward, term, trunc, info = env.step(DOWN)
            frames.append(obs["observation.images.front"])
            assert np.isfinite(info["latency"]["obs_age_s"]) and np.isfinite(info["latency"]["cmd_age_s"])
            assert np.allclose(info["executed"][:3], DOWN[:3])  # what went to the controller
        wall, sim = time.monotonic() - t0, env.arm.sim_time - sim0
        assert wall >= 0.95  # ten 0.1 s control periods: never faster than the wall clock
        assert abs(sim - wall) < 0.3  # the physics ran on the wall clock too (s)
        assert obs[STATE][2] < ref[STATE][2] - 0.05  # the TCP went down (m)
        assert frames[-1].dtype == np.uint8 and not np.array_equal(frames[0], frames[-1])  # the camera saw it
        assert accepted(env) == 10
    finally:
        env.close()
        fast.close()
    # the controller ends in its own hold, confirmed from its state before the loop stopped
    assert env.final_controller["hold_confirmed"] and env.final_controller["mode"] == "hold"
    assert env.final_controller["watchdog_trips"] == 1


def test_lease_is_held_for_the_run_and_released_on_exit(sim_cell):
    env = CellEnv(sim_cell, LIFT, cameras=(), job="the first run")
    env.reset(seed=0)
    key = env.arm.lease_key
    try:
        assert [h.job for h in lease.holders(key)] == ["the first run"]
        other = CellEnv(sim_cell, LIFT, cameras=())
        with pytest.raises(lease.LeaseError, match="the first run"):
            other.reset(seed=0)  # a second job cannot command the arm
        other.close()
        with pytest.raises(UnsafeActionError):
            env.step(np.full(7, np.nan, np.float32))
    finally:
        env.close()  # also after an error
    assert lease.holders(key) == []
    again = CellEnv(sim_cell, LIFT, cameras=())
    again.reset(seed=0)
    again.close()


def test_unsafe_actions_never_leave_python_and_cpp_still_rejects_them(sim_cell):
    env = CellEnv(sim_cell, LIFT, cameras=())
    try:
        env.reset(seed=0)
        env.step(DOWN)
        n_sent, n_exec = accepted(env), len(env.arm.executed)
        bad = [np.full(7, np.nan, np.float32), np.array([0, 0, 0, np.inf, 0, 0, 0], np.float32),
               np.array([0.5, 0, 0, 0, 0, 0, 0], np.float32), np.zeros(6, np.float32)]
        for action in bad:
            with pytest.raises(UnsafeActionError, match="action not sent"):
                env.step(action)
        assert accepted(env) == n_sent and len(env.arm.executed) == n_exec and env.n_refused == 4
        # nothing new is sent: the controller's watchdog holds the arm
        assert wait_until(lambda: env.arm.held, 2.0)
        # and if a NaN or out-of-range target reaches the C++ controller anyway, it rejects it
        ctrl = env.arm.ctrl
        env.arm.rearm()
        before = ctrl.events()
        assert not ctrl.set_ee_target([np.nan, 0.0, 0.3], [0.0, 1.0, 0.0, 0.0], 0.04)
        assert not ctrl.set_ee_target([5.0, 0.0, 0.3], [0.0, 1.0, 0.0, 0.0], 0.04)  # outside the workspace box
        after = ctrl.events()
        assert after["rejected_nonfinite"] == before["rejected_nonfinite"] + 1
        assert after["rejected_out_of_range"] == before["rejected_out_of_range"] + 1
    finally:
        env.close()


def test_a_starved_loop_ends_the_episode_in_a_hold_and_reset_rearms(sim_cell):
    env = CellEnv(sim_cell, LIFT, cameras=())
    try:
        env.reset(seed=0)
        for _ in range(3):
            env.step(DOWN)
        timeout = env.arm.watchdog_timeout_s()
        time.sleep(timeout + 0.3)  # the policy side stalls longer than the watchdog timeout
        assert env.arm.held and env.arm.ctrl.state()["mode"] == "hold"
        assert env.arm.ctrl.events()["watchdog_trips"] == 1
        n_sent = accepted(env)
        obs, reward, term, trunc, info = env.step(DOWN)
        assert trunc and not term and info["hold"] and reward == 0.0
        assert accepted(env) == n_sent  # nothing was sent into the hold
        with pytest.raises(RuntimeError, match="before reset"):
            env.step(DOWN)  # the episode is over
        env.reset(seed=1)
        assert not env.arm.held
        env.step(DOWN)
        assert accepted(env) == n_sent + 1
    finally:
        env.close()


def test_operator_procedure_go_marks_pause_and_stop(tmp_path):
    """A real cell's procedure, on a sim arm judged by the operator: home through the controller, wait
    for go, the operator's success mark ends the episode, pause holds the controller, stop ends in a hold."""
    cell = write_cell(tmp_path / "op.yaml", name="opcell")
    op = Operator()
    env = CellEnv(cell, "lift the cube", judge="operator", operator=op, max_steps=200)

    def push_later(event: str, delay_s: float) -> threading.Thread:
        t = threading.Thread(target=lambda: (time.sleep(delay_s), op.push(event)))
        t.start()
        return t

    try:
        assert env.wait_go and env.sim_task is None and env.task_description == "lift the cube"
        t0 = time.monotonic()
        push_later("go", 0.5)
        obs, _ = env.reset(seed=0)
        assert time.monotonic() - t0 >= 0.5  # it waited for the operator
        np.testing.assert_allclose(env.arm.joint_positions(), env.arm.home_q, atol=0.02)  # at home (rad)
        obs, reward, term, trunc, _ = env.step(DOWN)
        assert not term and not trunc
        op.push("success")
        obs, reward, term, trunc, _ = env.step(DOWN)
        assert term and reward == 1.0  # the operator's mark is the reward

        push_later("go", 0.2)
        env.reset(seed=1)
        env.step(DOWN)
        seen: dict[str, object] = {}

        def pause_then_resume() -> None:
            op.push("pause")
            time.sleep(0.3 + env.arm.watchdog_timeout_s())
            seen["held"] = env.arm.held
            seen["mode"] = env.arm.ctrl.state()["mode"]
            op.push("resume")

        t = threading.Thread(target=pause_then_resume)
        t0 = time.monotonic()
        t.start()
        time.sleep(0.05)
        env.step(DOWN)  # takes the pause: blocks while the controller holds
        env.step(DOWN)
        t.join()
        assert time.monotonic() - t0 >= 0.6 and seen == {"held": True, "mode": "hold"}
        assert not env.arm.held  # resumed: rearmed
        op.push("stop")
        with pytest.raises(OperatorStop):
            env.step(DOWN)
        assert env.arm.held  # stop ends in the controller's hold
    finally:
        env.close()
    assert env.final_controller["hold_confirmed"]
