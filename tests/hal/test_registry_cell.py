"""Driver registry (built-ins + entry points) and cell files."""

from __future__ import annotations

import textwrap

import pytest

from robo.config import ConfigError
from robo.hal import registry
from robo.hal.cell import Cell, cells_dir, resolve_cell_path
from robo.hal.lease import LeaseError


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path / "rt"))


def write(tmp_path, text: str, name: str = "cell.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_builtin_drivers_load_lazily_and_unknown_names_fail():
    cls = registry.get_driver("opencv_camera")
    assert cls.type_name == "opencv_camera" and cls.kind == "camera"
    assert {"sim_panda", "realsense", "franka", "keyboard", "leader_arm"} <= set(registry.available())
    with pytest.raises(registry.UnknownDriverError, match="unknown resource type 'lidar'.*known: .*sim_panda"):
        registry.get_driver("lidar")


def test_third_party_driver_found_through_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    (pkg / "robo_fake_cam").mkdir(parents=True)
    (pkg / "robo_fake_cam" / "__init__.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        from robo.hal.resource import Resource
        from robo.spec import Spec

        @dataclass
        class FakeConfig:
            url: str = "x"

        class FakeCam(Resource):
            kind = "camera"
            config_class = FakeConfig
            def _connect(self): pass
            def _close(self): pass
            def spec(self): return Spec({})
    """))
    dist = pkg / "robo_fake_cam-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: robo-fake-cam\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[robo.drivers]\nfake_cam = robo_fake_cam:FakeCam\n")
    monkeypatch.syspath_prepend(str(pkg))
    assert "fake_cam" in registry.available()
    cls = registry.get_driver("fake_cam")
    assert cls.__name__ == "FakeCam" and cls.type_name == "fake_cam"
    cell = Cell.from_dict({"resources": {"c": {"type": "fake_cam", "config": {"url": "rtsp://x"}}}})
    assert cell["c"].config.url == "rtsp://x"


def test_cell_loads_with_wiring_order_and_kinds(tmp_path):
    p = write(tmp_path, """
        name: bench
        host: nuc-1
        resources:
          cam: {type: mujoco_camera, config: {camera: front, width: 32, height: 32}, wiring: {sim: arm}}
          arm: {type: sim_panda}
          mouse: {type: spacemouse, wiring: {controls: arm}}
    """)
    cell = Cell.load(p)
    assert cell.name == "bench" and cell.host == "nuc-1"
    assert set(cell.by_kind("camera")) == {"cam"} and set(cell.by_kind("arm")) == {"arm"}
    assert cell["cam"].peers["sim"] is cell["arm"]
    order = cell._order()
    assert order.index("arm") < order.index("cam") and order.index("arm") < order.index("mouse")
    assert cell["arm"].lease_key == "sim_panda:bench/arm"
    with pytest.raises(KeyError, match="has no resource 'gripper'"):
        cell["gripper"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("resources:\n  a: {type: lidar}\n", r"cell.yaml: 'resources.a.type' = 'lidar' is not a known resource type"),
        ("resources:\n  cam: {type: realsense, config: {fps: 30}}\n",
         r"cell.yaml: resources.cam.config: serial is required"),
        ("resources:\n  arm: {type: franka}\n", r"resources.arm.config: robot_ip is required"),
        ("resources:\n  arm: {type: sim_panda, config: {speed: 3}}\n",
         r"unknown config key 'resources.arm.config.speed'"),
        ("resources:\n  arm: {type: sim_panda, config: {control_hz: 0}}\n", r"control_hz=0.0 is out of range"),
        ("resources:\n  cam: {type: mujoco_camera, wiring: {sim: arm}}\n",
         r"'resources.cam.wiring.sim' = 'arm' is not a resource of this cell"),
        ("resources:\n  arm: {typ: sim_panda}\n", r"unknown key 'resources.arm.typ'"),
        ("robots:\n  arm: {type: sim_panda}\n", r"unknown cell key 'robots'"),
        ("resources: {}\n", r"'resources' must be a non-empty mapping"),
    ],
)
def test_bad_cell_files_fail_with_one_clear_line(tmp_path, body, message):
    p = write(tmp_path, body)
    with pytest.raises(ConfigError, match=message) as e:
        Cell.load(p)
    assert "\n" not in str(e.value)


def test_shipped_cells_load():
    names = sorted(p.stem for p in cells_dir().glob("*.yaml"))
    assert {"sim_panda", "sim_panda_leader", "franka_lab"} <= set(names)
    for n in names:
        cell = Cell.load(resolve_cell_path(n))
        assert cell.resources
    lab = Cell.load(resolve_cell_path("franka_lab"))
    assert lab["wrist"].lease_key == "realsense:123622270000"
    assert lab["arm"].lease_key == "franka:172.16.0.2"


def test_cell_acquire_is_all_or_nothing(tmp_path):
    spec = {"name": "c1", "resources": {"arm": {"type": "sim_panda"},
                                        "cam": {"type": "mujoco_camera", "wiring": {"sim": "arm"}}}}
    a, b = Cell.from_dict(spec), Cell.from_dict(spec)
    with a.acquire(job="first") as held:
        assert {h.mode for _, h in held.leases} == {"exclusive", "shared"}
        # the camera alone may be shared; the arm may not
        b_cam = b.acquire(["cam"], modes={"cam": "shared"})
        b_cam.release()
        with pytest.raises(LeaseError, match=r"sim_panda:c1/arm.*job 'first'"):
            b.acquire(job="second")
        assert b["cam"]._lease is None  # the camera lease b took before failing was given back
    with b.acquire(job="second") as held:
        assert len(held.leases) == 2
