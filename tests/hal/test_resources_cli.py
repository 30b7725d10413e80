"""`robo resources list/discover/leases` and discovery of configured sim devices."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from robo.cli import main
from robo.hal.cell import Cell
from robo.hal.discovery import configured_sim_devices, discover


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "rt"))


@pytest.fixture
def cell_file(tmp_path):
    p = tmp_path / "cells" / "bench.yaml"
    p.parent.mkdir()
    p.write_text(textwrap.dedent("""
        name: bench
        resources:
          arm: {type: sim_panda}
          front: {type: mujoco_camera, config: {camera: front}, wiring: {sim: arm}}
          cam: {type: opencv_camera, config: {source: /dev/video42}}
    """))
    return p


def test_list_shows_health_and_the_lease_holder(cell_file, capsys):
    cell = Cell.load(cell_file)
    with cell.acquire(["arm"], job="someone-else"):
        assert main(["resources", "list", "--cell", str(cell_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in out["resources"]}
    assert rows["arm"]["health"] == "offline" and rows["arm"]["key"] == "sim_panda:bench/arm"
    assert f"exclusive pid {os.getpid()}" in rows["arm"]["lease"]
    assert rows["front"]["lease"] == "free" and rows["front"]["wiring"] == {"sim": "arm"}
    assert rows["cam"]["health"] == "down" and "/dev/video42 not present" in rows["cam"]["detail"]
    assert main(["resources", "list", "--cell", str(cell_file)]) == 0
    text = capsys.readouterr().out
    assert "NAME" in text and "HEALTH" in text and "sim=arm" in text


def test_bad_cell_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("resources:\n  wrist: {type: realsense}\n")
    assert main(["resources", "list", "--cell", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "serial is required" in err and "bad.yaml" in err


def test_discover_lists_configured_sim_devices_and_reports_driver_errors(cell_file, capsys):
    sims = configured_sim_devices(cell_file.parent)
    assert {(d.type, d.id) for d in sims} == {("sim_panda", "bench/arm"), ("mujoco_camera", "bench/front")}
    found = discover(["realsense", "opencv_camera", "no_such_driver"], include_sim=False)
    assert "no_such_driver" in found.errors  # one broken driver does not hide the others
    assert all(d.type in ("realsense", "opencv_camera") for d in found.devices)
    assert main(["resources", "discover", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(d["type"] == "sim_panda" for d in out["devices"])  # from configs/cells


def test_leases_command_lists_holders(cell_file, capsys):
    with Cell.load(cell_file).acquire(["arm"], job="j1"):
        assert main(["resources", "leases", "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert held["sim_panda:bench/arm"][0]["job"] == "j1"
