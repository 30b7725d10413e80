"""unitree_g1 for real over DDS: robo's driver in this process, our robot bridge (drivers/unitree_g1/bridge.py:
a MuJoCo G1 publishing rt/lowstate, consuming rt/arm_sdk) in another, CycloneDDS on loopback between them.
Everything asserted about the commands is asserted on the bridge's side (its report), as the robot would
see them."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

# cyclonedds is in the dev extra: without it these tests fail (they are not skipped)
from robo.drivers.unitree_g1 import UnitreeG1, UnitreeG1Config, channel, messages
from robo.hal.testing import HumanoidContract
from robo.sim import g1

BLEND_RATE = 2.0  # 1/s: the tests ramp the weight in 0.5 s (the robot's default is 0.2)


class Bridge:
    """The robot side in its own process; `stop()` returns its report."""

    def __init__(self, tmp_path, *extra: str) -> None:
        self.domain = random.Random().randrange(100, 230)
        self.report_path = tmp_path / f"bridge_{self.domain}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "robo.drivers.unitree_g1.bridge", "--domain", str(self.domain), "--interface", "lo",
             "--max-blend-rate", str(BLEND_RATE), "--report", str(self.report_path), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "bridge ready" in line, self.proc.stderr.read()[-2000:]
        self.t0 = time.monotonic()

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=20)
        return json.loads(self.report_path.read_text())

    def driver(self, **overrides) -> UnitreeG1:
        cfg = UnitreeG1Config(network_interface="lo", domain_id=self.domain, blend_rate_per_s=BLEND_RATE, **overrides)
        return UnitreeG1(cfg, name="g1", cell="test")


@pytest.fixture
def bridge(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "runtime"))
    made = []

    def make(*extra: str) -> Bridge:
        b = Bridge(tmp_path, *extra)
        made.append(b)
        return b

    yield make
    for b in made:
        if b.proc.poll() is None:
            b.proc.kill()


def run_actions(robot: UnitreeG1, action, seconds: float, hz: float = 20.0) -> None:
    for _ in range(int(seconds * hz)):
        robot.send_action(np.asarray(action, np.float32))
        time.sleep(1.0 / hz)


def upper_targets(report: dict, after: float = -1.0) -> np.ndarray:
    """(n, 17) upper-body targets of the commands the bridge accepted after `after` s."""
    rows = [r for r in report["log"] if r[0] > after]
    return np.array([r[2:] for r in rows])


def test_driver_and_robot_exchange_at_the_documented_rates_with_the_blend_ramp(bridge):
    b = bridge()
    robot = b.driver()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no SCHED_FIFO in CI: the loop says so and runs
        robot.connect()
    robot.lease()
    p0 = robot.get_observation()["observation.state"][17:].reshape(2, 3)
    run_actions(robot, [0.004, 0, 0, 0.004, 0, -0.002, -1], 1.5)  # both hands 12 cm forward, the right one 6 cm down
    run_actions(robot, [0, 0, 0, 0, 0, 0, -1], 0.5)
    p1 = robot.get_observation()["observation.state"][17:].reshape(2, 3)
    assert robot.health().status == "ok", robot.health()
    assert robot.weight == pytest.approx(1.0)
    robot.close()  # ramps the weight back to 0
    report = b.stop()
    # the robot moved as commanded: the palms measured through rt/lowstate (FK of its joint angles)
    assert p1[0, 0] - p0[0, 0] > 0.09 and p1[1, 0] - p0[1, 0] > 0.09  # m, 0.12 m asked
    assert p1[1, 2] - p0[1, 2] < -0.04 and abs(p1[0, 2] - p0[0, 2]) < 0.02
    # rates: rt/arm_sdk at 50 Hz, rt/lowstate at 500 Hz (median message intervals, s)
    assert report["lowcmd_interval_s"] == pytest.approx(0.02, rel=0.25)
    assert report["lowstate_interval_s"] == pytest.approx(0.002, rel=0.5)
    assert robot.counts["states"] > 200 * report["duration_s"] * 0.5  # the driver took most of them
    # every command was valid; the blend weight ramped up to 1 and back to 0 no faster than allowed
    assert report["bad_crc"] == 0 and report["bad_mode_machine"] == 0 and report["out_of_limit"] == 0
    assert report["blend_rate_violations"] == 0
    weights = np.array([r[1] for r in report["log"]])
    assert weights.max() == pytest.approx(1.0) and weights[0] < 0.1 and weights[-1] == pytest.approx(0.0, abs=1e-6)
    # no gaps: commands arrived at >= 80% of 50 Hz from the first to the last (the time connect() takes
    # before the first one varies with the machine's load, so it is not counted)
    span = report["log"][-1][0] - report["log"][0][0]
    assert span > 2.0 and report["commands"] > 0.8 * 50 * span, (report["commands"], span)


def test_bad_crc_commands_are_refused_by_the_robot(bridge):
    b = bridge()
    dp = channel.participant(b.domain, "lo")
    rogue = channel.RawWriter(dp, "rt/arm_sdk", messages.LowCmd_)
    wild = messages.LowCmd(mode_machine=5)
    upper = [g1.MOTOR_INDEX[j] for j in g1.UPPER_BODY]
    wild.mode[upper], wild.kp[upper], wild.q[upper] = 1, 60.0, 1.5
    wild.q[g1.BLEND_WEIGHT_MOTOR] = 0.0
    wild.crc = messages.lowcmd_crc(wild) ^ 0x1  # one bit off
    time.sleep(1.0)  # discovery
    for _ in range(40):
        rogue.write(messages.encode_lowcmd(wild))
        time.sleep(0.01)
    valid = messages.LowCmd(mode_machine=5)  # one valid message (weight 0): the check is not refuse-all
    valid.crc = messages.lowcmd_crc(valid)
    rogue.write(messages.encode_lowcmd(valid))
    time.sleep(0.3)
    valid.q[g1.BLEND_WEIGHT_MOTOR] = 1.0  # then a valid one that jumps the blend weight 0 -> 1 in 0.3 s
    valid.crc = messages.lowcmd_crc(valid)
    rogue.write(messages.encode_lowcmd(valid))
    time.sleep(0.3)
    report = b.stop()
    assert report["bad_crc"] >= 30  # best effort on loopback: nearly all arrive
    assert report["commands"] == 2 and report["log"][0][1] == 0.0  # only the valid ones were applied
    assert report["blend_rate_violations"] == 1  # the jump: faster than BLEND_RATE (2/s)


def test_bad_crc_states_are_refused_and_the_commands_hold(bridge):
    good_s = 1.5  # states turn bad-CRC this long after the driver's first command reached the bridge
    b = bridge("--corrupt-state-crc-after", str(good_s))
    robot = b.driver(state_timeout_s=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        robot.connect()
    robot.lease()
    deadline = time.monotonic() + good_s + 10.0  # generous: a loaded machine starts the driver late
    while not robot.ctrl.held and time.monotonic() < deadline:  # keep asking for motion throughout
        robot.send_action(np.array([0.004, 0, 0, 0.004, 0, 0, -1], np.float32))
        time.sleep(0.05)
    run_actions(robot, [0.004, 0, 0, 0.004, 0, 0, -1], 1.0)  # and still after the hold
    assert robot.counts["bad_crc"] > 100  # the corrupted states were dropped
    assert robot.ctrl.held and robot.ctrl.events()["state_timeouts"] == 1
    assert robot.health().status == "down"
    robot.close()
    report = b.stop()
    t_corrupt = report["log"][0][0] + good_s  # bridge clock
    before = upper_targets(report, after=t_corrupt - 1.0)[:20]
    after = upper_targets(report, after=t_corrupt + 0.5)
    assert np.abs(np.diff(before, axis=0)).max() > 1e-3  # the targets moved while states were good
    assert len(after) > 20 and np.abs(after - after[0]).max() < 1e-6  # then one pose: the hold


def test_a_stale_action_stream_ends_in_a_hold(bridge):
    b = bridge()
    robot = b.driver()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        robot.connect()
    robot.lease()
    run_actions(robot, [0.005, 0, 0, 0.005, 0, 0, -1], 1.0)
    t_last = time.monotonic() - b.t0
    time.sleep(1.5)  # the policy goes quiet
    assert robot.ctrl.held and robot.ctrl.events()["watchdog_trips"] == 1
    assert robot.health().status == "degraded"
    robot.close()
    report = b.stop()
    after = upper_targets(report, after=t_last + 0.4)
    assert len(after) > 40  # the commands kept coming, at the publish rate
    assert np.abs(after - after[0]).max() < 1e-6  # one pose


def test_an_out_of_limit_target_is_refused(bridge):
    b = bridge()
    robot = b.driver(control_mode="joint")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        robot.connect()
    robot.lease()
    q = np.concatenate([robot.group_positions(g) for g in ("waist", "left_arm", "right_arm")])
    roll_max = float(robot.ctrl.limits()["q_max"][1])  # waist roll: 0.52 rad
    sent = []
    for roll in np.arange(0.1, 0.75, 0.1):  # 0.1 rad per action; the last ones are past the limit
        q[1] = roll
        sent.append(robot.send_action(q.astype(np.float32))[1])
        time.sleep(0.1)
    assert robot.counts["rejected"] >= 1
    assert max(sent) < roll_max  # what the driver reports as sent stayed inside
    margin = robot.ctrl.config.joint_limit_margin
    robot.close()
    report = b.stop()
    assert report["out_of_limit"] == 0
    assert upper_targets(report)[:, 1].max() <= roll_max - margin + 1e-6  # kept out of the limit's margin too


@pytest.fixture(scope="class")
def shared_bridge(tmp_path_factory):
    b = Bridge(tmp_path_factory.mktemp("bridge"))
    yield b
    b.stop()


class TestUnitreeG1Contract(HumanoidContract):
    """The Humanoid contract against one bridge (connect needs a robot on the wire)."""

    @pytest.fixture(autouse=True)
    def _bridge(self, shared_bridge):
        self.b = shared_bridge

    def make_resource(self):
        return self.b.driver()
