"""`sim_panda`: a MuJoCo Panda behind the same `Arm` interface as the real Franka driver.

The arm owns an `MjModel/MjData` pair and the project controller from
`robo.sim.control.make_controller(model, data, kind)` — the C++ controller of `robo.drivers.rt` when
it is built, else the Python reference. Two clocks:

- lock-step (`realtime: false`): `send_action` sets the controller target and runs one control
  period of physics (1 / control_hz s), so the sim advances exactly as fast as it is commanded;
- real-time (`realtime: true`, what cells run): the C++ controller's own thread advances MuJoCo on
  the wall clock at the loop rate (`ctrl.start(realtime=True)`); `send_action` only writes targets and
  the state comes from the controller's snapshot, exactly as with the Franka backend. Python never
  touches `data` while the loop runs: observers (cameras, a task's success test) read `world()`, a
  copy refreshed from the loop's consistent `physics_state()`. Resets stop the loop, place the
  scene, and start it again.

`exec_actions` (from `Arm`) paces actions on the wall clock in both modes.

Wiring: MuJoCo cameras render from this arm's `world()` (`wiring: {sim: <this arm>}`) under
`sim_lock`, so rendering on their threads never sees a half-stepped state.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robo.drivers.sim_panda.config import SimPandaConfig  # noqa: E402
from robo.geometry import quat_conj, quat_from_mat, quat_mul, rotvec_from_quat  # noqa: E402
from robo.hal.controlled import ControlledArm  # noqa: E402
from robo.hal.registry import register  # noqa: E402
from robo.hal.resource import Health  # noqa: E402
from robo.sim.control import DOWN_QUAT, ee_delta_target  # noqa: E402  (DOWN_QUAT: TCP z pointing down, wxyz)
from robo.spec import ACTION, STATE, Feature, Spec  # noqa: E402

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
STATE_NAMES = (*(f"q{i}" for i in range(1, 8)), "gripper_width", "tcp_x", "tcp_y", "tcp_z",
               "tcp_qw", "tcp_qx", "tcp_qy", "tcp_qz")
# joint limits (rad) + gripper command range, used for the action spec before connecting
PANDA_Q_LO = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973, -1.0], dtype=np.float32)
PANDA_Q_HI = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973, 1.0], dtype=np.float32)


def _assets_dir() -> Path:
    import robo.sim

    return Path(next(iter(robo.sim.__path__))) / "assets"


@register("sim_panda")
class SimPanda(ControlledArm):
    """Simulated Panda arm with gripper."""

    config_class: ClassVar[type] = SimPandaConfig
    config: SimPandaConfig
    simulated: ClassVar[bool] = True

    def __init__(self, config: SimPandaConfig | None = None, *, name: str | None = None, cell: str | None = None):
        super().__init__(config, name=name, cell=cell)
        self.sim_lock = threading.RLock()
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self.ctrl: Any = None
        self.n_rejected = 0
        self.n_actions = 0
        self._target_pos = np.zeros(3)
        self._target_quat = DOWN_QUAT.copy()
        self._target_q = np.zeros(7)
        self._target_width = 0.08
        self._world: mujoco.MjData | None = None  # real-time mode: observers' copy of the scene

    # ---------------------------------------------------------------- model
    def scene_path(self) -> Path:
        p = Path(self.config.scene)
        return p if p.is_absolute() or p.exists() else _assets_dir() / p

    def build_model(self) -> mujoco.MjModel:
        path = self.scene_path()
        if not path.is_file():
            raise FileNotFoundError(f"sim_panda '{self.name}': scene {path} not found")
        spec = mujoco.MjSpec.from_file(str(path))
        if self.config.wrist_camera and spec.camera("wrist") is None:
            hand = spec.body("hand")
            if hand is None:
                raise ValueError(f"sim_panda '{self.name}': scene {path} has no Panda 'hand' body")
            cam = hand.add_camera()
            cam.name = "wrist"
            cam.pos = [0.07, 0.0, 0.02]
            cam.quat = [0.0, 1.0, 0.0, 0.0]  # look along the hand's +z, towards the fingers
            cam.fovy = 75.0
        return spec.compile()

    def _connect(self) -> None:
        from robo.sim.control import GRIPPER_MAX_WIDTH, READY_Q, make_controller

        self.model = self.build_model()
        self.data = mujoco.MjData(self.model)
        jids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ARM_JOINTS]
        if min(jids) < 0:
            raise ValueError(f"sim_panda '{self.name}': scene lacks the Panda joints {ARM_JOINTS}")
        self._qadr = np.array([self.model.jnt_qposadr[j] for j in jids])
        self._dadr = np.array([self.model.jnt_dofadr[j] for j in jids])
        self._q_lo = self.model.jnt_range[jids, 0].copy()
        self._q_hi = self.model.jnt_range[jids, 1].copy()
        fj = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ("finger_joint1", "finger_joint2")]
        self._fq = np.array([self.model.jnt_qposadr[j] for j in fj])
        self._tcp = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "tcp")
        self._gripper_max = float(GRIPPER_MAX_WIDTH)
        if self.config.home_q:
            self.home_q = np.array(self.config.home_q, dtype=np.float64)
        else:
            from robo.sim.tasks.base import solve_ik

            self.home_q = solve_ik(self.model, np.array(self.config.home_tcp_pos), DOWN_QUAT, READY_Q)
        self.n_ticks = max(1, int(round(1.0 / (self.model.opt.timestep * self.config.control_hz))))
        self.ctrl = self._make_controller(make_controller)
        if self.config.realtime and self.controller_kind != "cpp":
            raise RuntimeError(f"sim_panda '{self.name}': realtime mode needs the C++ controller (robo.drivers.rt)")
        self.reset()

    def _make_controller(self, make_controller: Any) -> Any:
        """The C++ controller of robo.drivers.rt when built ("auto"/"cpp"), else the Python one."""
        kind = self.config.controller
        if kind in ("auto", "cpp") or self.config.realtime:
            try:
                from robo.drivers import rt  # type: ignore[attr-defined]

                # posture: the pose at reset, or home_q when the config fixes it (as the sim tasks do);
                # real-time mode leaves memory unlocked: the loop shares a Python process (torch, ...)
                cfg = rt.ControllerConfig(policy_hz=self.config.control_hz,
                                          watchdog_timeout_s=self.config.watchdog_timeout_s,
                                          lock_memory=False, wake_mode=self.config.wake_mode)
                q_home = self.home_q if self.config.home_q else None
                return make_controller(self.model, self.data, "cpp", config=cfg, q_home=q_home)
            except (ImportError, AttributeError, TypeError, ValueError) as e:
                if kind == "cpp" or self.config.realtime:
                    raise RuntimeError(f"sim_panda '{self.name}': the C++ controller is not available: {e}") from e
        return make_controller(self.model, self.data, "python", q_home=self.home_q)

    def _close(self) -> None:
        if self.ctrl is not None and self.loop_running:
            self.ctrl.stop()  # physics stops with the loop: the arm stays where it is
        self.ctrl = None
        self.data = None
        self._world = None
        self.model = None

    @property
    def controller_kind(self) -> str:
        if self.ctrl is None:
            return "none"
        return "cpp" if "rt" in type(self.ctrl).__module__.split(".") else "python"

    # ---------------------------------------------------------------- state
    def reset(self, q: np.ndarray | None = None, *, qpos: np.ndarray | None = None) -> None:
        """Put the arm at `q` (default home) with the gripper open, at rest; target := that pose.

        `qpos` (model.nq,) places the whole scene instead (a task's initial state, objects included).
        In real-time mode the loop is stopped while the scene is placed, then started again."""
        self._check_connected()
        m, d = self.model, self.data
        with self.sim_lock:
            self._pause_loop()
            mujoco.mj_resetData(m, d)
            if qpos is not None:
                qpos = np.asarray(qpos, dtype=np.float64).reshape(-1)
                if qpos.shape != (m.nq,):
                    raise ValueError(f"sim_panda '{self.name}': qpos has {qpos.size} values, the scene has nq={m.nq}")
                d.qpos[:] = qpos
            else:
                d.qpos[self._qadr] = self.home_q if q is None else np.asarray(q, dtype=np.float64)
                d.qpos[self._fq] = self._gripper_max / 2
            mujoco.mj_forward(m, d)
            self.ctrl.reset()
            self._sync_targets()
            self._resume_loop()

    def set_joint_positions(self, q: np.ndarray, gripper_width: float | None = None) -> None:
        """Sim only: place the arm at `q` (7,) rad at rest (e.g. a human moving a leader arm)."""
        self._check_connected()
        q = np.clip(np.asarray(q, dtype=np.float64).reshape(7), self._q_lo, self._q_hi)
        with self.sim_lock:
            self._pause_loop()
            d = self.data
            d.qpos[self._qadr] = q
            d.qvel[self._dadr] = 0.0
            if gripper_width is not None:
                d.qpos[self._fq] = float(np.clip(gripper_width, 0.0, self._gripper_max)) / 2
            mujoco.mj_forward(self.model, d)
            self.ctrl.reset()
            self._sync_targets()
            self._resume_loop()

    def _pause_loop(self) -> None:
        """Real-time mode: stop the loop thread (physics stops with it) so Python may write `data`."""
        if self.loop_running:
            self.ctrl.stop()

    def _resume_loop(self) -> None:
        """Real-time mode: (re)start the loop on the wall clock; the observers' copy starts from `data`."""
        if not self.config.realtime:
            return
        if self._world is None:
            self._world = mujoco.MjData(self.model)
        mujoco.mj_copyData(self._world, self.model, self.data)  # mocap bodies etc. are static from here
        self.ctrl.start(realtime=True)

    def world(self) -> mujoco.MjData:
        """A consistent `MjData` of the whole scene for observers (cameras, a task's state and success).

        Lock-step mode: the arm's own `data`. Real-time mode: a copy refreshed from the loop's newest
        `physics_state()` (at most one 2 ms tick old) and `mj_forward`-ed. Use it under `sim_lock`."""
        self._check_connected()
        if not self.loop_running:
            return self.data
        w = self._world
        snap = self.ctrl.physics_state()
        if snap["t"] != w.time:
            w.qpos[:] = snap["qpos"]
            w.qvel[:] = snap["qvel"]
            w.time = snap["t"]
            mujoco.mj_forward(self.model, w)
        return w

    def _sync_targets(self) -> None:
        d = self.data
        self._target_pos = d.site_xpos[self._tcp].copy()
        self._target_quat = quat_from_mat(d.site_xmat[self._tcp])
        self._target_q = d.qpos[self._qadr].copy()
        self._target_width = float(d.qpos[self._fq].sum())

    def joint_positions(self) -> np.ndarray:
        self._check_connected()
        if self.loop_running:
            return np.asarray(self.ctrl.state()["q"], np.float64)
        with self.sim_lock:
            return self.data.qpos[self._qadr].copy()

    def gripper_width(self) -> float:
        self._check_connected()
        if self.loop_running:
            return float(self.ctrl.state()["gripper_width"])
        with self.sim_lock:
            return float(self.data.qpos[self._fq].sum())

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,) m, orientation wxyz (4,)) of the TCP in the world frame."""
        self._check_connected()
        if self.loop_running:
            s = self.ctrl.state()
            return np.asarray(s["ee_pos"], np.float64), np.asarray(s["ee_quat_wxyz"], np.float64)
        with self.sim_lock:
            return self.data.site_xpos[self._tcp].copy(), quat_from_mat(self.data.site_xmat[self._tcp])

    def ee_target(self) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,) m, orientation wxyz (4,)): the TCP target ee_delta actions are added to (sim
        only: a scripted operator plans from it as the task's expert plans from the task's target)."""
        return self._target_pos.copy(), self._target_quat.copy()

    def get_observation(self) -> dict[str, np.ndarray]:
        """observation.state (15,): lock-step from `data`; real-time from the controller's snapshot,
        as the Franka driver reads it."""
        self._check_connected()
        if self.loop_running:
            s = self.ctrl.state()
            state = np.concatenate([s["q"], [s["gripper_width"]], s["ee_pos"], s["ee_quat_wxyz"]])
            return {STATE: state.astype(np.float32)}
        with self.sim_lock:
            d = self.data
            state = np.concatenate([
                d.qpos[self._qadr], [d.qpos[self._fq].sum()], d.site_xpos[self._tcp],
                quat_from_mat(d.site_xmat[self._tcp]),
            ]).astype(np.float32)
        return {STATE: state}

    @property
    def sim_time(self) -> float:
        if self.loop_running:
            return float(self.ctrl.now())
        return float(self.data.time) if self.data is not None else 0.0

    # ---------------------------------------------------------------- ControlledArm hooks
    def _resend_target(self) -> None:
        if self.config.control_mode == "ee_delta":
            self.ctrl.set_ee_target(self._target_pos, self._target_quat, self._target_width)
        else:
            self.ctrl.set_joint_target(self._target_q, self._target_width)

    def _sync_targets_from_controller(self) -> None:
        if not self.loop_running:
            with self.sim_lock:
                self._sync_targets()
            return
        s = self.ctrl.state()
        self._target_pos = np.asarray(s["ee_pos"], np.float64).copy()
        self._target_quat = np.asarray(s["ee_quat_wxyz"], np.float64).copy()
        self._target_q = np.asarray(s["q"], np.float64).copy()

    def _measured_q(self) -> np.ndarray:
        return self.joint_positions()

    def _tick(self, dt: float) -> None:
        if self.loop_running:
            super()._tick(dt)
        else:  # lock-step: run that much physics
            with self.sim_lock:
                self.ctrl.step(max(1, int(round(dt / self.model.opt.timestep))))

    # ---------------------------------------------------------------- commands
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        if c.control_mode == "ee_delta":
            hi = np.array([c.max_delta_pos_m] * 3 + [c.max_delta_rot_rad] * 3 + [1.0], dtype=np.float32)
            return -hi, hi
        if self.model is None:  # not connected: the published Panda limits (as in sim/assets/panda.xml)
            return PANDA_Q_LO.copy(), PANDA_Q_HI.copy()
        return (np.append(self._q_lo, -1.0).astype(np.float32), np.append(self._q_hi, 1.0).astype(np.float32))

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Send one action: lock-step mode also runs one control period (1 / control_hz s of sim time);
        real-time mode only writes the target (the loop thread moves the arm).

        Returns the action actually sent: deltas after the per-step, tilt and workspace limits
        (ee_delta, robo.sim.control.ee_delta_target), or joint targets after the joint limits and the
        per-step joint limit (joint). NaN = no change.
        """
        self.require_lease("command")
        self._check_connected()
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        lo, hi = self.action_bounds()
        if a.shape != lo.shape:
            raise ValueError(f"sim_panda '{self.name}': action has shape {a.shape}, expected {lo.shape}")
        with self.sim_lock:
            if self.config.control_mode == "ee_delta":
                c = self.config
                new_pos, new_quat, width = ee_delta_target(
                    self._target_pos, self._target_quat, a, max_dpos=c.max_delta_pos_m, max_drot=c.max_delta_rot_rad,
                    workspace_lo=np.array(c.workspace_low), workspace_hi=np.array(c.workspace_high),
                    max_tilt_rad=c.max_tilt_rad, gripper=c.gripper)
                rot = rotvec_from_quat(quat_mul(new_quat, quat_conj(self._target_quat)))
                sent = np.concatenate([new_pos - self._target_pos, np.clip(rot, lo[3:6], hi[3:6]),
                                       [1.0 - 2.0 * width / self._gripper_max]])
                if self.ctrl.set_ee_target(new_pos, new_quat, width):
                    self._target_pos, self._target_quat, self._target_width = new_pos, new_quat, width
                else:
                    self.n_rejected += 1
                    sent = np.zeros_like(sent)
                    sent[6] = 1.0 - 2.0 * self._target_width / self._gripper_max
            else:
                hold = np.append(self._target_q, 1.0 - 2.0 * self._target_width / self._gripper_max)
                a = np.where(np.isfinite(a), a, hold)
                a = np.clip(a, lo, hi)
                step = self.config.max_delta_joint_rad
                q = np.clip(a[:7], self._target_q - step, self._target_q + step)
                # limit the step from the measured position too, so a far target is approached gradually
                meas = self.joint_positions()
                q = np.clip(q, meas - step, meas + step)
                q = np.clip(q, self._q_lo, self._q_hi)
                width = self._gripper_max * (1.0 - a[7]) / 2.0
                sent = np.append(q, a[7])
                if self.ctrl.set_joint_target(q, width):
                    self._target_q, self._target_width = q, width
                else:
                    self.n_rejected += 1
                    sent = np.append(self._target_q, 1.0 - 2.0 * self._target_width / self._gripper_max)
            if not self.loop_running:  # lock-step: one control period of physics
                self.ctrl.step(self.n_ticks)
            self.n_actions += 1
        return sent.astype(np.float32)

    # ---------------------------------------------------------------- description
    def spec(self) -> Spec:
        lo, hi = self.action_bounds()
        if self.config.control_mode == "ee_delta":
            names: tuple[str, ...] = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
            units = "m (dx..dz), rad (drx..drz), 1 (gripper: -1 open, +1 closed)"
        else:
            names = (*(f"q{i}" for i in range(1, 8)), "gripper")
            units = "rad (q1..q7), 1 (gripper: -1 open, +1 closed)"
        return Spec({
            STATE: Feature((len(STATE_NAMES),), "float32", STATE_NAMES, "rad (q), m (width, tcp xyz), 1 (quat)"),
            ACTION: Feature((len(names),), "float32", names, units, tuple(map(float, lo)), tuple(map(float, hi))),
        })

    def health(self) -> Health:
        if not self._connected:
            path = self.scene_path()
            if not path.is_file():
                return Health("down", f"scene {path} not found")
            return Health("offline", f"not connected (sim, scene {path.name})")
        m = {"sim_time_s": round(self.sim_time, 3), "actions": self.n_actions, "rejected": self.n_rejected,
             "controller": self.controller_kind, "realtime": self.loop_running}
        err = self._exec_error
        if err is not None:
            return Health("down", f"exec_actions failed: {err}", m)
        if self.n_rejected:
            return Health("degraded", f"controller rejected {self.n_rejected} targets", m)
        return Health("ok", f"sim t={self.sim_time:.1f}s, {self.controller_kind} controller", m)

    def metadata(self) -> dict[str, Any]:
        out = super().metadata()
        out.update(model="Franka Panda (MuJoCo)", scene=str(self.scene_path()), simulated=True)
        if self.model is not None:
            out.update(timestep_s=float(self.model.opt.timestep), ticks_per_action=self.n_ticks,
                       realtime=bool(self.config.realtime),
                       controller=self.controller_kind,
                       cameras=[self.model.camera(i).name for i in range(self.model.ncam)])
        return out

    def camera_names(self) -> list[str]:
        self._check_connected()
        return [self.model.camera(i).name for i in range(self.model.ncam)]

    def _check_connected(self) -> None:
        if not self._connected and self.model is None:
            raise RuntimeError(f"sim_panda '{self.name}' is not connected")

