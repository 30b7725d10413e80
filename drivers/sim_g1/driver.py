"""`sim_g1`: a MuJoCo Unitree G1 behind the same `Humanoid` interface as the real `unitree_g1` driver.

The pelvis is welded at standing height and position servos hold the legs (the sim's stand-in for the
robot's balance controller); the waist and both arms are the C++ controller's (`robo.sim.g1.UpperBodySim`:
robo.drivers.rt on PD drives, bimanual differential IK), the same controller, limits and command form as
`unitree_g1` on rt/arm_sdk. `send_action` sets the targets and runs one control period of physics, so the
sim advances exactly as fast as it is commanded; `exec_actions` (from `Arm`) paces actions on the wall clock.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robo.drivers.sim_g1.config import SimG1Config  # noqa: E402
from robo.hal.humanoid import Humanoid  # noqa: E402
from robo.hal.registry import register  # noqa: E402
from robo.hal.resource import Health  # noqa: E402
from robo.spec import STATE, Spec  # noqa: E402


def _g1():
    from robo.sim import g1

    return g1


@register("sim_g1")
class SimG1(Humanoid):
    """Simulated G1 (29 DoF, rubber hands), upper body commanded."""

    config_class: ClassVar[type] = SimG1Config
    config: SimG1Config
    simulated: ClassVar[bool] = True
    controlled_groups: ClassVar[tuple[str, ...]] = ("waist", "left_arm", "right_arm")

    def __init__(self, config: SimG1Config | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self.sim_lock = threading.RLock()
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self.body: Any = None
        self.n_actions = 0

    # ---------------------------------------------------------------- model
    def scene_path(self) -> Path:
        p = Path(self.config.scene)
        return p if p.is_absolute() or p.exists() else _g1().ASSETS / p

    def _connect(self) -> None:
        g1 = _g1()
        path = self.scene_path()
        if not path.is_file():
            raise FileNotFoundError(f"sim_g1 '{self.name}': scene {path} not found")
        self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        missing = [j for j in g1.UPPER_BODY if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, j) < 0]
        if missing:
            raise ValueError(f"sim_g1 '{self.name}': scene {path} has no G1 joint {missing[0]!r}")
        self.body = g1.UpperBodySim(self.model, self.data, self.config.control_hz)
        self.home_q = g1.solve_hands_ik(self.model, self.body.qadr, self.body.palm_sites,
                                        (self.config.home_left, self.config.home_right))
        self.n_ticks = max(1, int(round(1.0 / (self.model.opt.timestep * self.config.control_hz))))
        self.reset()

    def _close(self) -> None:
        self.body = None
        self.data = None
        self.model = None

    def reset(self, q: np.ndarray | None = None) -> None:
        """Put the upper body at `q` (default home) at rest; targets := that pose."""
        self._check_connected()
        with self.sim_lock:
            mujoco.mj_resetData(self.model, self.data)
            self.body.place(self.home_q if q is None else np.asarray(q, dtype=np.float64))
            self.body.reset()
            self._target_q = self.data.qpos[self.body.qadr].copy()

    # ---------------------------------------------------------------- state
    def joint_groups(self) -> dict[str, tuple[str, ...]]:
        return dict(_g1().GROUPS)

    def joint_positions(self) -> dict[str, float]:
        self._check_connected()
        with self.sim_lock:
            return {j: float(self.data.qpos[self.model.jnt_qposadr[self.model.joint(j).id]]) for j in _g1().JOINTS}

    def get_observation(self) -> dict[str, np.ndarray]:
        self._check_connected()
        with self.sim_lock:
            palms = self.body.palm_pos() - self.body.pelvis_pos  # pelvis frame, as unitree_g1 reports them
            state = np.concatenate([self.data.qpos[self.body.qadr], palms.ravel()]).astype(np.float32)
        return {STATE: state}

    @property
    def sim_time(self) -> float:
        return float(self.data.time) if self.data is not None else 0.0

    # ---------------------------------------------------------------- commands
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _g1().action_bounds(self.config.control_mode, self.config.max_delta_pos_m)

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Apply one action for one control period (1 / control_hz s of sim time).

        Returns the action actually sent: hand deltas after the per-step limits and the hand-target boxes
        (ee_delta), or joint targets after the joint limits and the per-step change limit (joint); NaN =
        no change. A target the controller refuses keeps the previous one (and is returned instead).
        """
        self.require_lease("command")
        self._check_connected()
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        lo, hi = self.action_bounds()
        if a.shape != lo.shape:
            raise ValueError(f"sim_g1 '{self.name}': action has shape {a.shape}, expected {lo.shape}")
        with self.sim_lock:
            if self.config.control_mode == "ee_delta":
                a = np.clip(np.where(np.isfinite(a), a, 0.0), lo, hi)
                before = self.body.hands.pos.copy()
                if not self.body.apply_ee_action(a):
                    self.body.hands.pos = before
                sent = np.append((self.body.hands.pos - before).ravel(), a[6])
            else:
                q = _g1().step_joint_target(a, self._target_q, self.config.max_delta_joint_rad,
                                            measured=self.data.qpos[self.body.qadr])
                q = np.clip(q, lo, hi)
                if self.body.set_joint_target(q):
                    self._target_q = q
                sent = self._target_q.copy()
            self.body.ctrl.step(self.n_ticks)
            self.n_actions += 1
        return sent.astype(np.float32)

    # ---------------------------------------------------------------- description
    def spec(self) -> Spec:
        return _g1().humanoid_spec(self.config.control_mode, self.config.max_delta_pos_m)

    def health(self) -> Health:
        if not self._connected:
            path = self.scene_path()
            if not path.is_file():
                return Health("down", f"scene {path} not found")
            return Health("offline", f"not connected (sim, scene {path.name})")
        ev = self.body.ctrl.events()
        m = {"sim_time_s": round(self.sim_time, 3), "actions": self.n_actions, "rejected": self.body.n_rejected,
             "held": bool(self.body.ctrl.held)}
        if self._exec_error is not None:
            return Health("down", f"exec_actions failed: {self._exec_error}", m)
        if self.body.ctrl.held:
            return Health("degraded", f"controller holds (watchdog trips {ev['watchdog_trips']}); call reset()", m)
        if self.body.n_rejected:
            return Health("degraded", f"controller rejected {self.body.n_rejected} targets", m)
        return Health("ok", f"sim t={self.sim_time:.1f}s, C++ controller (PD drives)", m)

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(model="Unitree G1 29-DoF (MuJoCo, pelvis welded)", scene=str(self.scene_path()), simulated=True)
        if self.model is not None:
            out.update(timestep_s=float(self.model.opt.timestep), ticks_per_action=self.n_ticks,
                       cameras=[self.model.camera(i).name for i in range(self.model.ncam)])
        return out

    def camera_names(self) -> list[str]:
        self._check_connected()
        return [self.model.camera(i).name for i in range(self.model.ncam)]

    def _check_connected(self) -> None:
        if not self._connected and self.model is None:
            raise RuntimeError(f"sim_g1 '{self.name}' is not connected")
