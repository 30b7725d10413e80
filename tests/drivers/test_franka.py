"""franka: the hardware driver's configuration and failure modes (no robot or libfranka here)."""

from __future__ import annotations

import pytest

from robo.drivers.franka import Franka, FrankaConfig
from robo.hal import LeaseError


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))


def test_config_requires_the_robot_ip():
    with pytest.raises(ValueError, match="robot_ip is required"):
        FrankaConfig()
    with pytest.raises(ValueError, match="control_hz=0 is out of range"):
        FrankaConfig(robot_ip="172.16.0.2", control_hz=0)


def test_without_libfranka_connect_says_what_is_missing():
    arm = Franka(FrankaConfig(robot_ip="192.0.2.1"), name="arm", cell="lab")  # TEST-NET address
    assert arm.lease_key == "franka:192.0.2.1"
    assert arm.spec()["action"].shape == (7,) and arm.spec()["observation.state"].shape == (15,)
    assert arm.health().status in ("offline", "down")
    with pytest.raises(RuntimeError, match="libfranka backend"):
        arm.connect()
    with pytest.raises(LeaseError, match="no exclusive lease"):
        arm.send_action([0.0] * 7)
