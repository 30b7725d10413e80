"""Fixtures for the C++ controller tests: the Panda MJCF/URDF from robo.sim and a factory of
(model, data, controller) triples at a chosen configuration."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from robo.drivers import rt

ASSETS = Path(rt.default_urdf_path()).parent
MJCF = ASSETS / "panda.xml"
URDF = ASSETS / "panda.urdf"
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


class Sim:
    """A MuJoCo Panda and a C++ controller on it."""

    def __init__(self, q=HOME, finger=0.04, timestep=None, **config):
        self.model = mujoco.MjModel.from_xml_path(str(MJCF))
        if timestep is not None:
            self.model.opt.timestep = timestep
        self.data = mujoco.MjData(self.model)
        self.data.qpos[:7] = q
        self.data.qpos[7:9] = finger
        mujoco.mj_forward(self.model, self.data)
        self.cfg = rt.ControllerConfig(**config)
        self.ctrl = rt.MujocoController(self.model, self.data, URDF, self.cfg)
        self.ctrl.reset()
        self.tcp = self.model.site("tcp").id

    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp].copy()

    def tcp_quat(self) -> np.ndarray:
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.tcp])
        return quat

    def arm_ctrl(self) -> np.ndarray:
        return self.data.ctrl[:7].copy()


@pytest.fixture
def sim():
    """Factory: sim(q=HOME, finger=0.04, timestep=None, **ControllerConfig fields) -> Sim."""
    made = []

    def make(**kwargs) -> Sim:
        s = Sim(**kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.ctrl.stop()
