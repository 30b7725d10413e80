"""What `robo cluster join` advertises: a cell's arms and cameras as unit resources with their HAL lease
keys, the cell as the node label, hardware checked against the HAL's discovery (no Ray needed)."""

from __future__ import annotations

import pytest
from cluster_helpers import write_cell

from robo.cluster.node import advertise, join_command, parse_resource


def test_a_sim_cell_advertises_its_arm_and_camera_and_its_name(tmp_path):
    advert = advertise(write_cell(tmp_path / "c.yaml", "advcell"))
    assert advert.ray_resources() == {"robot:advcell/arm": 1.0, "camera:advcell/front": 1.0}
    assert advert.labels() == {"robo.io/cell": "advcell"}
    keys = {r.name: r.lease_key for r in advert.resources}
    assert keys == {"robot:advcell/arm": "sim_panda:advcell/arm", "camera:advcell/front": "mujoco_camera:advcell/front"}
    cmd = join_command(advert, address="10.0.0.2:6379", num_cpus=2)
    assert cmd[1:] == ["start", '--resources={"robot:advcell/arm": 1.0, "camera:advcell/front": 1.0}',
                       "--labels=robo.io/cell=advcell", "--address=10.0.0.2:6379", "--num-cpus=2"]
    head = join_command(advert, port=6380)
    assert "--head" in head and "--port=6380" in head and "--include-dashboard=false" in head
    assert parse_resource("robot:advcell/arm") == ("robot", "advcell", "arm")
    with pytest.raises(ValueError, match="not of the form robot:<cell>/<name>"):
        parse_resource("advcell/arm")


def test_hardware_not_discovered_here_is_refused_unless_allowed():
    with pytest.raises(RuntimeError, match=r"resource 'arm' \(franka\) is not attached to this machine"):
        advertise("franka_lab")  # no Franka (nor its cameras) on a CI machine
    advert = advertise("franka_lab", allow_missing=True)
    assert set(advert.ray_resources()) == {"robot:franka_lab/arm", "camera:franka_lab/wrist",
                                           "camera:franka_lab/scene", "camera:franka_lab/webcam"}
    assert any(n.startswith("arm (franka): not discovered here") for n in advert.notes)  # said, not hidden
