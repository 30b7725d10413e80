"""`robo intervene` sessions on the real-time sim cell with the scripted operator (and a keyboard).

The driving policy is a stalled one (no base: zero actions), so the operator's failure predicate ("no
progress") fires in every episode and the sessions' labels are known in advance."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from robo.cells import CellEnv
from robo.data import Dataset, DatasetWriter
from robo.hil import ScriptedOperator, ScriptedOperatorConfig
from robo.hil.session import run_session

LIFT = "PandaLift-v0"
FAST = ScriptedOperatorConfig(no_progress_steps=4)


def session(cell, tmp_path, strategy, config=FAST, episodes=1, operator_cls=ScriptedOperator, max_steps=None):
    env = CellEnv(cell, LIFT, max_steps=max_steps)
    op = operator_cls(env, config)
    writer = DatasetWriter(tmp_path / "ds", env.robo_spec, fps=env.control_hz, task=env.task_description)
    try:
        report = run_session(env, None, op, strategy=strategy, episodes=episodes, writer=writer)
    finally:
        writer.close()
        env.close()
    return report, Dataset(tmp_path / "ds"), op


def runs(values) -> list:
    out: list = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def test_rac_session_records_its_segments_in_order_and_ends_after_the_correction(sim_cell, tmp_path):
    report, ds, op = session(sim_cell, tmp_path, "rac", ScriptedOperatorConfig(no_progress_steps=4, pause_steps=2))
    ep = ds.episode(0)
    assert runs(ep["segment"]) == ["autonomous", "paused", "recovery", "correction"]
    assert op.reasons and op.reasons[0].startswith("no progress")
    by_segment = {s: set(ep["action_source"][ep["segment"] == s]) for s in set(ep["segment"])}
    assert by_segment == {"autonomous": {"policy"}, "paused": {"hold"}, "recovery": {"human"}, "correction": {"human"}}
    human = np.isin(ep["segment"], ["recovery", "correction"])
    np.testing.assert_array_equal(ep["intervention_id"], np.where(human, 0, -1))  # a pause is not yet a takeover
    np.testing.assert_array_equal(ep["intervention"], human)
    assert np.isfinite(ep["base_action"][ep["segment"] == "autonomous"]).all()
    # the correction finished the task (the expert lifted the cube) and the episode ended there
    r = report["episodes"][0]
    assert r["success"] and r["ended_by"] == "task"
    assert r["history"] == ["autonomous", "paused", "recovery", "correction"] and r["interventions"] == 1
    steps = r["steps"]
    assert steps["correction"] > 5 and r["human_s"] == pytest.approx((steps["recovery"] + steps["correction"]) / 10)
    assert report["totals"]["interventions"] == 1 and report["operator_s"] > r["human_s"]  # paused time counts too


def test_hg_dagger_session_returns_control_to_the_policy(sim_cell, tmp_path):
    cfg = ScriptedOperatorConfig(no_progress_steps=4, handback_steps=4, max_interventions=2)
    report, ds, _ = session(sim_cell, tmp_path, "hg-dagger", cfg, max_steps=45)
    segments = runs(ds.episode(0)["segment"])
    assert segments[:4] == ["autonomous", "recovery", "correction", "autonomous"]  # handed back
    ids = ds.episode(0)["intervention_id"]
    assert set(ids[ds.episode(0)["segment"] != "autonomous"]) == set(range(report["episodes"][0]["interventions"]))
    assert report["episodes"][0]["ended_by"] == "task"


class Watching(ScriptedOperator):
    """The scripted operator, also reading the controller while the session is paused."""

    def __init__(self, env, config):
        super().__init__(env, config)
        self.env, self.seen = env, []

    def events(self, ctx):
        if ctx.phases.phase == "paused":
            status = self.env.arm.controller_status()
            self.seen.append((bool(self.env.arm.held), status, self.env.arm.tcp_pose()[0].copy()))
        return super().events(ctx)


def test_pause_holds_the_arm_asserted_from_the_controller(sim_cell, tmp_path):
    report, ds, op = session(sim_cell, tmp_path, "rac", ScriptedOperatorConfig(no_progress_steps=4, pause_steps=6),
                             operator_cls=Watching)
    assert len(op.seen) >= 5
    assert all(held for held, _, _ in op.seen), [s for _, s, _ in op.seen]
    tcp = np.stack([p for _, _, p in op.seen])
    assert np.abs(tcp - tcp[0]).max() < 2e-3  # the arm stayed where it was
    ep = ds.episode(0)
    assert (ep["segment"] == "paused").sum() >= 5 and set(ep["action_source"][ep["segment"] == "paused"]) == {"hold"}
    assert report["episodes"][0]["success"]  # rearmed after the pause: the correction still moved the arm


def test_teleop_device_unplugged_mid_takeover_ends_in_a_hold_with_the_episode_kept(sim_cell, tmp_path):
    from robo.hil import DeviceOperator
    from robo.teleop.keyboard import KeyboardTeleop
    from robo.teleop.terminal import TerminalKeys

    r, w = os.pipe()
    keys = TerminalKeys(r)
    env = CellEnv(sim_cell, LIFT)
    held = []
    real_hold = env.hold
    env.hold = lambda: held.append(real_hold()) or held[-1]  # type: ignore[method-assign]
    device = KeyboardTeleop(keys=keys, name="kb")
    device.connect()
    op = DeviceOperator(device, keys)
    writer = DatasetWriter(tmp_path / "ds", env.robo_spec, fps=env.control_hz, task=env.task_description)

    def person():
        time.sleep(1.0)
        os.write(w, b"t")  # take over
        time.sleep(0.3)
        os.write(w, b"e")  # enable the keyboard
        for _ in range(6):
            time.sleep(0.1)
            os.write(w, b"r")  # up
        time.sleep(0.3)
        device.close()  # unplugged

    t = threading.Thread(target=person)
    t.start()
    try:
        report = run_session(env, None, op, strategy="rac", episodes=3, writer=writer)
    finally:
        t.join()
        writer.close()
        env.close()
        keys.stop()
        os.close(w)
    assert report["ended"] == "device lost" and len(report["episodes"]) == 1
    assert held == [True]  # the controller held as the device was lost, before anything else
    ds = Dataset(tmp_path / "ds")
    assert ds.num_episodes == 1  # kept, with its labels up to the loss
    ep = ds.episode(0)
    assert runs(ep["segment"]) == ["autonomous", "recovery"] and ep["action_source"][-1] == "human"
    human = ep["action"][ep["action_source"] == "human"]
    assert (human[:, 2] > 0).any()  # the keyboard drove the arm up before it was unplugged


def test_moving_the_keyboard_takes_over_and_the_operator_marks_the_episode(sim_cell, tmp_path):
    from robo.hil import DeviceOperator
    from robo.teleop.keyboard import KeyboardTeleop
    from robo.teleop.terminal import TerminalKeys

    r, w = os.pipe()
    keys = TerminalKeys(r)
    env = CellEnv(sim_cell, LIFT)
    device = KeyboardTeleop(keys=keys, name="kb")
    device.connect()
    writer = DatasetWriter(tmp_path / "ds", env.robo_spec, fps=env.control_hz, task=env.task_description)

    def person():
        time.sleep(0.8)
        os.write(w, b"e")  # enable: nothing moves yet, the policy keeps control
        time.sleep(0.5)
        for _ in range(5):
            os.write(w, b"r")  # moving the device takes over
            time.sleep(0.1)
        time.sleep(0.5)
        os.write(w, b"h")  # hand back
        time.sleep(0.5)
        os.write(w, b"y")  # mark: success, end of episode

    t = threading.Thread(target=person)
    t.start()
    try:
        report = run_session(env, None, DeviceOperator(device, keys), strategy="rac", episodes=1, writer=writer)
    finally:
        t.join()
        writer.close()
        env.close()
        keys.stop()
        os.close(w)
    ep = Dataset(tmp_path / "ds").episode(0)
    assert runs(ep["segment"]) == ["autonomous", "recovery", "autonomous"]
    assert report["episodes"][0]["success"] and report["episodes"][0]["ended_by"] == "operator"
    assert (ep["action"][ep["segment"] == "recovery"][:, 2] > 0).any()
