"""`franka`: a real Franka Panda / FR3 behind the same `Arm` interface as `sim_panda`.

Python never runs in the 1 kHz loop: `connect()` builds the C++ controller of `robo.drivers.rt`
with its libfranka backend, starts its real-time thread, and `send_action` only writes targets into
the controller's latest-command slot (the C++ side interpolates, limits and watches for stale
commands). The binding this driver expects from drivers/rt (not built on this machine):

    ctrl = rt.FrankaController(robot_ip, urdf_path=..., config=...)   # libfranka backend
    ctrl.start(realtime=True); ctrl.stop(); ctrl.reset()
    ctrl.set_ee_target(pos, quat_wxyz, gripper_width) -> bool           # controller contract
    ctrl.set_joint_target(q, gripper_width) -> bool
    ctrl.snapshot() -> object with q (7,), tcp_pos (3,), tcp_quat_wxyz (4,), gripper_width, t
    ctrl.rt_status() -> object with sched_fifo, memory_locked, warning
    ctrl.held, ctrl.rearm(), ctrl.state(), ctrl.events()    # holds and homing (robo.hal.controlled)

Untested here: no robot, no libfranka. The action maths is shared with sim_panda's conventions.
"""

from __future__ import annotations

import subprocess
from typing import Any, ClassVar

import numpy as np

from robo.drivers.franka.config import FrankaConfig
from robo.geometry import quat_conj, quat_mul, rotvec_from_quat
from robo.hal.controlled import ControlledArm
from robo.hal.registry import register
from robo.hal.resource import Health
from robo.sim.control import ee_delta_target
from robo.spec import ACTION, STATE, Feature, Spec

STATE_NAMES = (*(f"q{i}" for i in range(1, 8)), "gripper_width", "tcp_x", "tcp_y", "tcp_z",
               "tcp_qw", "tcp_qx", "tcp_qy", "tcp_qz")
Q_LO = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
Q_HI = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
GRIPPER_MAX_WIDTH = 0.08  # m


def _controller_class() -> Any:
    try:
        from robo.drivers import rt  # type: ignore[attr-defined]

        return rt.FrankaController
    except (ImportError, AttributeError) as e:
        raise RuntimeError(
            "the franka driver needs robo.drivers.rt built with its libfranka backend "
            f"(rt.FrankaController is not available: {e}); see drivers/franka/README.md"
        ) from None


@register("franka")
class Franka(ControlledArm):
    """Franka Panda / FR3 with the Franka Hand, over FCI."""

    config_class: ClassVar[type] = FrankaConfig
    config: FrankaConfig

    def __init__(self, config: FrankaConfig | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self.ctrl: Any = None
        self.n_rejected = 0
        self.home_q = np.asarray(self.config.home_q, np.float64)
        self._target_width = GRIPPER_MAX_WIDTH

    @property
    def lease_key(self) -> str:
        return f"franka:{self.config.robot_ip}"

    def _connect(self) -> None:
        cls = _controller_class()
        from robo.sim.control import URDF_PATH

        ctrl = cls(self.config.robot_ip, urdf_path=str(URDF_PATH))
        ctrl.start(realtime=True)
        status = ctrl.rt_status()
        if self.config.realtime_required and not status.sched_fifo:
            ctrl.stop()
            raise RuntimeError(f"franka '{self.name}': no real-time scheduling ({status.warning})")
        ctrl.reset()
        self.ctrl = ctrl
        snap = ctrl.snapshot()
        self._target_pos = np.asarray(snap.tcp_pos, dtype=np.float64).copy()
        self._target_quat = np.asarray(snap.tcp_quat_wxyz, dtype=np.float64).copy()

    def _close(self) -> None:
        if self.ctrl is not None:
            self.ctrl.stop()
            self.ctrl = None

    def get_observation(self) -> dict[str, np.ndarray]:
        s = self.ctrl.snapshot()
        state = np.concatenate([s.q, [s.gripper_width], s.tcp_pos, s.tcp_quat_wxyz]).astype(np.float32)
        return {STATE: state}

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Write one target into the controller's latest-command slot; returns what was sent."""
        self.require_lease("command")
        c = self.config
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        s = self.ctrl.snapshot()
        if c.control_mode == "ee_delta":
            pos, quat, width = ee_delta_target(
                self._target_pos, self._target_quat, a, max_dpos=c.max_delta_pos_m, max_drot=c.max_delta_rot_rad,
                workspace_lo=np.array(c.workspace_low), workspace_hi=np.array(c.workspace_high),
                max_tilt_rad=c.max_tilt_rad, gripper=c.gripper)
            ok = self.ctrl.set_ee_target(pos, quat, width)
            rot = rotvec_from_quat(quat_mul(quat, quat_conj(self._target_quat)))
            sent = np.concatenate([pos - self._target_pos, rot, [1.0 - 2.0 * width / GRIPPER_MAX_WIDTH]])
            if ok:
                self._target_pos, self._target_quat, self._target_width = pos, quat, width
        else:
            q = np.clip(a[:7], np.asarray(s.q) - c.max_delta_joint_rad, np.asarray(s.q) + c.max_delta_joint_rad)
            q = np.clip(q, Q_LO, Q_HI)
            g = float(np.clip(a[7], -1.0, 1.0))
            self._target_width = GRIPPER_MAX_WIDTH * (1.0 - g) / 2.0
            ok = self.ctrl.set_joint_target(q, self._target_width)
            sent = np.append(q, g)
        if not ok:
            self.n_rejected += 1
            sent = np.zeros_like(sent) if c.control_mode == "ee_delta" else np.append(s.q, 0.0)
        return sent.astype(np.float32)

    # ---------------------------------------------------------------- ControlledArm hooks
    def _resend_target(self) -> None:
        if self.config.control_mode == "ee_delta":
            self.ctrl.set_ee_target(self._target_pos, self._target_quat, self._target_width)
        else:
            self.ctrl.set_joint_target(np.asarray(self.ctrl.snapshot().q), self._target_width)

    def _sync_targets_from_controller(self) -> None:
        snap = self.ctrl.snapshot()
        self._target_pos = np.asarray(snap.tcp_pos, dtype=np.float64).copy()
        self._target_quat = np.asarray(snap.tcp_quat_wxyz, dtype=np.float64).copy()

    def spec(self) -> Spec:
        c = self.config
        if c.control_mode == "ee_delta":
            hi = np.array([c.max_delta_pos_m] * 3 + [c.max_delta_rot_rad] * 3 + [1.0])
            lo, names = -hi, ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
        else:
            lo, hi = np.append(Q_LO, -1.0), np.append(Q_HI, 1.0)
            names = (*(f"q{i}" for i in range(1, 8)), "gripper")
        return Spec({
            STATE: Feature((len(STATE_NAMES),), "float32", STATE_NAMES, "rad (q), m (width, tcp xyz), 1 (quat)"),
            ACTION: Feature((len(names),), "float32", names, None, tuple(map(float, lo)), tuple(map(float, hi))),
        })

    def health(self) -> Health:
        if self.ctrl is None:
            reachable = _ping(self.config.robot_ip)
            if reachable is False:
                return Health("down", f"robot {self.config.robot_ip} does not answer ping")
            return Health("offline", f"not connected (robot {self.config.robot_ip}"
                          f"{' answers ping' if reachable else ''})")
        if self.n_rejected:
            return Health("degraded", f"controller rejected {self.n_rejected} targets")
        return Health("ok")

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(model="Franka Panda / FR3", robot_ip=self.config.robot_ip, simulated=False)
        return out


def _ping(ip: str) -> bool | None:
    """True/False if `ping` could tell, None when ping is not available."""
    try:
        r = subprocess.run(["ping", "-c", "1", "-W", "1", ip], capture_output=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.returncode == 0


