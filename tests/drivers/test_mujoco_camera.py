"""mujoco_camera: renders a wired sim arm's cameras on a capture thread while the arm steps."""

from __future__ import annotations

import numpy as np
import pytest

from robo.config import ConfigError
from robo.hal.align import CameraGroup
from robo.hal.cell import Cell
from robo.hal.testing import CameraContract


def sim_cell(fps: float = 20.0) -> Cell:
    cam = {"width": 32, "height": 24, "fps": fps}
    return Cell.from_dict({
        "name": "mjcam",
        "resources": {
            "arm": {"type": "sim_panda"},
            "front": {"type": "mujoco_camera", "config": {"camera": "front", **cam}, "wiring": {"sim": "arm"}},
            "wrist": {"type": "mujoco_camera", "config": {"camera": "wrist", "depth": True, **cam},
                      "wiring": {"sim": "arm"}},
        },
    })


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))


def test_frames_follow_the_sim_while_it_steps():
    cell = sim_cell()
    with cell.acquire(job="test"), cell:
        arm, front, wrist = cell["arm"], cell["front"], cell["wrist"]
        f0 = front.read(timeout=5.0)
        w0 = wrist.read(timeout=5.0)
        for _ in range(10):  # 1 s of sim time: the arm moves towards -y
            arm.send_action(np.array([0.0, -0.03, 0.0, 0, 0, 0, -1], np.float32))
        seen = [front.read(timeout=5.0) for _ in range(3)]  # frames rendered during and after the motion
        f1 = seen[-1]
        assert f0.color.shape == (24, 32, 3) and f0.color.dtype == np.uint8
        assert f0.time_domain == "sim" and f0.t_device < 0.1
        assert f1.t_device == pytest.approx(1.0)  # the sim time of the state shown: after 10 x 0.1 s
        assert [f.t_device for f in seen] == sorted(f.t_device for f in seen)
        assert np.abs(f1.color.astype(int) - f0.color.astype(int)).sum() > 0  # the arm moved in view
        assert w0.depth is not None and w0.depth.shape == (24, 32) and float(w0.depth.min()) > 0.0
        assert cell.health()["front"].status in ("ok", "degraded")
        # two cameras read as one observation aligned in time
        group = CameraGroup({"front": front, "wrist": wrist}, tolerance_s=0.2)
        frames = group.read(timeout=5.0)
        obs = group.observation(frames)
        assert set(obs) == {"observation.images.front", "observation.images.wrist", "observation.depth.wrist"}
        assert abs(frames["front"].t_capture - frames["wrist"].t_capture) <= 0.2


def test_unknown_camera_name_and_missing_wiring_fail_clearly():
    cell = Cell.from_dict({"resources": {
        "arm": {"type": "sim_panda"},
        "cam": {"type": "mujoco_camera", "config": {"camera": "nope"}, "wiring": {"sim": "arm"}},
    }})
    with pytest.raises(ValueError, match=r"no camera 'nope' in the model \(has \[.*'wrist'\]\)"):
        cell.connect()
    assert not cell["arm"].is_connected  # connect is all or nothing
    with pytest.raises(ConfigError, match=r"'resources.cam' \(mujoco_camera\) needs 'wiring.sim'"):
        Cell.from_dict({"resources": {"cam": {"type": "mujoco_camera"}}}, source="x.yaml")


class TestMujocoCameraContract(CameraContract):
    def make_resource(self):
        self.cell = sim_cell(fps=30.0)
        return self.cell["front"]

    def start_source(self, resource) -> None:
        pass

    @pytest.fixture
    def resource(self):
        res = self.make_resource()
        self.cell["arm"].connect()  # the sim the camera renders from
        yield res
        res.close()
        res.release_lease()
        self.cell.close()
