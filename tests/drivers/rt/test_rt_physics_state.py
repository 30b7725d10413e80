"""MujocoController.physics_state(): the whole scene as the loop last read it, consistent and current,
in fast mode and while the real-time thread owns mjData (what sim cells observe the scene through)."""

from __future__ import annotations

import time
from pathlib import Path

import mujoco
import numpy as np

from robo.drivers import rt

LIFT = Path(rt.default_urdf_path()).parent / "lift_scene.xml"


def lift_controller():
    model = mujoco.MjModel.from_xml_path(str(LIFT))  # the arm and a free cube: nq 16, nv 15
    data = mujoco.MjData(model)
    data.qpos[:7] = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
    mujoco.mj_forward(model, data)
    return model, data, rt.MujocoController(model, data)


def test_fast_mode_mirrors_the_state_the_last_tick_read():
    model, data, ctrl = lift_controller()
    s = ctrl.physics_state()  # published by the construction's reset
    assert s["qpos"].shape == (model.nq,) and s["qvel"].shape == (model.nv,)
    np.testing.assert_array_equal(s["qpos"], data.qpos)
    ctrl.step(25)
    s = ctrl.physics_state()
    # the mirror is taken at the start of a tick: one physics step behind data after step()
    assert abs(s["t"] - (data.time - model.opt.timestep)) < 1e-12
    assert np.abs(s["qpos"] - data.qpos).max() < 1e-3


def test_real_time_mode_gives_a_current_consistent_scene_without_touching_data():
    model, data, ctrl = lift_controller()
    ctrl.start(realtime=True)
    try:
        t0 = time.monotonic()
        first = ctrl.physics_state()
        time.sleep(0.3)
        later = ctrl.physics_state()
        wall = time.monotonic() - t0
        assert later["t"] - first["t"] >= 0.2 and later["t"] - first["t"] <= wall + 0.05  # sim time on the wall clock
        # a consistent state: forward kinematics of the mirrored qpos puts the free cube where its qpos says
        world = mujoco.MjData(model)
        world.qpos[:] = later["qpos"]
        mujoco.mj_forward(model, world)
        cube = model.body("cube").id
        np.testing.assert_allclose(world.xpos[cube], later["qpos"][9:12], atol=1e-9)
        assert abs(later["qpos"][11] - 0.02) < 1e-3  # the cube rests on the table (m)
    finally:
        ctrl.stop()
