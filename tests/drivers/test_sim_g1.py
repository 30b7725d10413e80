"""sim_g1: the MuJoCo G1 behind the Humanoid contract, driving the C++ controller on PD drives."""

from __future__ import annotations

import numpy as np
import pytest

from robo.drivers.sim_g1 import SimG1, SimG1Config
from robo.hal.testing import HumanoidContract
from robo.sim import g1
from robo.spec import STATE


class TestSimG1Contract(HumanoidContract):
    def make_resource(self):
        return SimG1(SimG1Config(), name="g1", cell="test")


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))


def test_ee_delta_moves_both_hands_and_squeezes():
    robot = SimG1(SimG1Config(scene="g1_welded.xml"), name="g1", cell="test")
    with robot:
        robot.lease()
        p0 = robot.body.palm_pos()
        sent = [robot.send_action(np.array([0.5, 0, 0, 0, 0, -0.5, -1], np.float32)) for _ in range(5)]
        assert [s[0] for s in sent] == pytest.approx([0.02] * 5)  # clipped to 2 cm per step
        assert [s[5] for s in sent] == pytest.approx([-0.02] * 5)
        for _ in range(10):  # settle
            robot.send_action(np.zeros(7, np.float32))
        p1 = robot.body.palm_pos()
        assert p1[0, 0] - p0[0, 0] == pytest.approx(0.10, abs=0.01)  # left hand forward 10 cm
        assert p1[1, 2] - p0[1, 2] == pytest.approx(-0.10, abs=0.01)  # right hand down 10 cm
        gap_open = p1[0, 1] - p1[1, 1]
        for _ in range(10):
            robot.send_action(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))
        assert gap_open - (robot.body.palm_pos()[0, 1] - robot.body.palm_pos()[1, 1]) > 0.06  # pressed in
        assert robot.health().status == "ok"
        assert robot.get_observation()[STATE].shape == (17 + 6,)


def test_joint_mode_tracks_targets_and_limits_the_step():
    robot = SimG1(SimG1Config(scene="g1_welded.xml", control_mode="joint"), name="j", cell="test")
    with robot:
        robot.lease()
        q0 = robot.group_positions("left_arm")
        target = np.concatenate([robot.group_positions(g) for g in ("waist", "left_arm", "right_arm")])
        target[3:10] += 0.25
        first = robot.send_action(target.astype(np.float32))
        assert np.abs(first[3:10] - q0).max() == pytest.approx(0.1, abs=1e-6)  # max_delta_joint_rad per action
        for _ in range(20):
            robot.send_action(target.astype(np.float32))
        np.testing.assert_allclose(robot.group_positions("left_arm"), target[3:10], atol=0.03)  # rad
        assert robot.spec()["action"].names[0] == "waist_yaw"
        assert set(robot.joint_groups()) >= {"legs", "waist", "left_arm", "right_arm", "hands"}
        assert robot.joint_groups()["left_arm"] == g1.GROUPS["left_arm"]


def test_resources_discover_lists_the_g1_cell_and_the_cell_runs(capsys):
    import json

    from robo.cli import main
    from robo.hal.cell import Cell

    assert main(["resources", "discover", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    rows = {d["id"]: d for d in found["devices"]}
    assert rows["sim_g1/robot"]["type"] == "sim_g1" and rows["sim_g1/robot"]["name"] == "simulated (humanoid)"
    assert "unitree_g1" not in found["errors"]  # its discovery (NICs on 192.168.123.x) ran
    cell = Cell.load("sim_g1")
    with cell.acquire(job="test"), cell:
        robot = cell["robot"]
        assert robot.kind == "humanoid"
        robot.send_action(np.zeros(7, np.float32))
        frame = cell["front"].read(timeout=10.0)
        assert frame.color.shape == (64, 64, 3) and frame.color.std() > 1.0
