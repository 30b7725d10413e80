"""`mujoco_camera`: renders an MJCF camera of a wired MuJoCo resource on a capture thread.

The wired peer (`wiring: {sim: arm}`) must expose `model`, `data` and `sim_lock` (e.g. `sim_panda`),
and may expose `world()`: the consistent scene observers read while a real-time loop owns `data`
(sim_panda in real-time mode). Each frame copies the scene under `sim_lock` (`update_scene`, a few
µs) and renders outside it, so a frame always shows one consistent physics state while the arm keeps
stepping. `t_capture` is the host time of that copy; `t_device` is the sim time (`time_domain="sim"`).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robo.drivers.mujoco_camera.config import MujocoCameraConfig  # noqa: E402
from robo.hal.camera import Camera, RawFrame  # noqa: E402
from robo.hal.registry import register  # noqa: E402
from robo.hal.resource import Health, now  # noqa: E402


@register("mujoco_camera")
class MujocoCamera(Camera):
    """Offscreen MuJoCo camera."""

    config_class: ClassVar[type] = MujocoCameraConfig
    config: MujocoCameraConfig
    simulated: ClassVar[bool] = True
    required_wiring: ClassVar[tuple[str, ...]] = ("sim",)

    def __init__(self, config: MujocoCameraConfig | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self._renderer: mujoco.Renderer | None = None
        self._next_t = 0.0

    @property
    def sim(self) -> Any:
        sim = self.peers.get("sim")
        if sim is None:
            raise RuntimeError(f"mujoco_camera '{self.name}' is not wired to a sim (wiring: {{sim: <arm>}})")
        return sim

    def _open(self) -> None:
        sim = self.sim
        if getattr(sim, "model", None) is None:
            raise RuntimeError(f"mujoco_camera '{self.name}': its sim '{sim.name}' is not connected")
        model = sim.model
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, self.config.camera) < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(
                f"mujoco_camera '{self.name}': no camera '{self.config.camera}' in the model (has {names})"
            )
        off_w, off_h = model.vis.global_.offwidth, model.vis.global_.offheight
        if self.config.width > off_w or self.config.height > off_h:
            raise ValueError(
                f"mujoco_camera '{self.name}': {self.config.width}x{self.config.height} exceeds the model's "
                f"offscreen buffer {off_w}x{off_h} (raise <visual><global offwidth/offheight> in the MJCF)"
            )
        self._next_t = 0.0

    def _thread_init(self) -> None:
        # the GL context belongs to the thread that creates it
        self._renderer = mujoco.Renderer(self.sim.model, self.config.height, self.config.width)

    def _thread_exit(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _grab(self) -> RawFrame | None:
        period = 1.0 / self.config.fps
        t = time.monotonic()
        if self._next_t == 0.0:
            self._next_t = t
        if t < self._next_t:
            self._stop.wait(self._next_t - t)
            return None
        self._next_t = max(self._next_t + period, t - period)  # no burst after a stall
        sim, r = self.sim, self._renderer
        assert r is not None
        with sim.sim_lock:
            if sim.data is None:
                return None
            scene = sim.world() if hasattr(sim, "world") else sim.data
            r.update_scene(scene, camera=self.config.camera)
            t_sim = float(scene.time)
            t_cap = now()
        color = r.render().copy()
        depth = None
        if self.config.depth:
            r.enable_depth_rendering()
            depth = r.render().astype(np.float32)
            r.disable_depth_rendering()
        return RawFrame(color=color, t_capture=t_cap, depth=depth, t_device=t_sim, time_domain="sim")

    def probe(self) -> Health:
        sim = self.peers.get("sim")
        if sim is None:
            return Health("down", "not wired to a sim")
        return Health("offline", f"not connected (renders '{self.config.camera}' of {sim.name})")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(model="MuJoCo offscreen camera", simulated=True, camera=self.config.camera)
        if "sim" in self.peers:
            out["sim"] = self.peers["sim"].name
        return out
