"""Shared base for the MuJoCo Panda tasks (see docs/CONTRACTS.md, "Tasks").

Each env step: TCP target := clip(target + delta) (workspace box, bounded tilt/yaw), then
`ctrl.set_ee_target`, then `ctrl.step(50)` (0.002 s physics -> 10 Hz policy). Subclasses give the
scene XML, the object reset, the object part of the state vector and the success test.

Action (7,) float32: [dx, dy, dz] m, [drx, dry, drz] rad (world-frame rotation vector applied to the
target orientation), gripper in [-1, 1]: > 0 closes (finger width target 0 m: full grasp force),
<= 0 opens (0.08 m).
A binary grasp keeps a learned policy's slightly-off gripper output (0.5 instead of 1) from
loosening the grip mid-transport, the failure mode a linear width mapping gave BC policies.
Bounds: +-0.03 m and +-0.15 rad per step (0.3 m/s, 1.5 rad/s), about what the controller follows
(its reference limiting caps the TCP at ~0.25 m/s); the target is clipped to a workspace box and
kept within 1 rad of pointing straight down.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede the first mujoco import

import math  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robo.geometry import mat_from_quat, quat_from_mat, quat_mul, rotvec_from_quat  # noqa: E402
from robo.sim.control import (  # noqa: E402
    DOWN_QUAT,
    GRIPPER_MAX_WIDTH,
    READY_Q,
    TCP_SITE,
    ee_delta_target,
    make_controller,
)
from robo.sim.scenes import load_scene, resolve_scene  # noqa: E402
from robo.spec import ACTION, IMAGE_PREFIX, STATE, Feature, Spec  # noqa: E402

PHYSICS_TIMESTEP = 0.002  # s: robo:physics.xml; the controller runs one tick per physics step
N_SUBSTEPS = 50  # physics ticks per policy step: 0.002 s x 50 = 0.1 s (10 Hz)
MAX_DPOS = 0.03  # m per step
MAX_DROT = 0.15  # rad per step
# DOWN_QUAT (robo.sim.control): TCP pointing straight down (hand z-axis = -world z), fingers along world y.
MAX_ROT_DEV = 1.0  # rad, target orientation stays within this angle of DOWN_QUAT
WORKSPACE_LO = np.array([0.25, -0.35, 0.015])  # m, TCP target box (table top is z = 0)
WORKSPACE_HI = np.array([0.75, 0.35, 0.40])
STATE_BOUND = 10.0
# the tasks' action semantics (robo.sim.control.ee_delta_target); a sim cell drives its arm with the same
ACTION_LIMITS = {"max_dpos": MAX_DPOS, "max_drot": MAX_DROT, "workspace_lo": WORKSPACE_LO,
                 "workspace_hi": WORKSPACE_HI, "max_tilt_rad": MAX_ROT_DEV, "gripper": "binary"}

_HOME_Q_CACHE: dict[tuple[Path, tuple[float, ...]], np.ndarray] = {}


def rot6d(mat: np.ndarray) -> np.ndarray:
    """Continuous 6-D rotation: the frame's x and y axes in world coordinates (first two columns)."""
    m = np.asarray(mat).reshape(3, 3)
    return np.concatenate([m[:, 0], m[:, 1]])


def yaw4(mat: np.ndarray) -> np.ndarray:
    """(cos 4 yaw, sin 4 yaw) of a body with a square footprint: continuous, and the same for the four
    yaws that look alike. Objects get this instead of a full rotation: their tilt components barely
    vary in demonstrations, so normalised by demo statistics they blow up (x100) the moment a learned
    policy tilts an object a little."""
    m = np.asarray(mat).reshape(3, 3)
    yaw = math.atan2(m[1, 0], m[0, 0])
    return np.array([math.cos(4 * yaw), math.sin(4 * yaw)])


def yaw4_names(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}_yaw4_cos", f"{prefix}_yaw4_sin")


def rot6d_names(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{ax}axis_{c}" for ax in "xy" for c in "xyz")


def pose_names(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}_x", f"{prefix}_y", f"{prefix}_z", *rot6d_names(prefix))


def vec_names(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}_x", f"{prefix}_y", f"{prefix}_z")


def yaw_quat(yaw: float) -> np.ndarray:
    """wxyz quaternion of a rotation by `yaw` rad about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def solve_ik(model: mujoco.MjModel, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Damped least-squares IK of the `tcp` site (arm joints are qpos[0:7]); returns (7,) rad."""
    data = mujoco.MjData(model)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, TCP_SITE)
    q = np.array(q0, dtype=np.float64)
    jac = np.zeros((6, model.nv))
    err = np.zeros(6)
    for _ in range(200):
        data.qpos[:7] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        err[:3] = pos - data.site_xpos[site]
        err[3:] = rotvec_from_quat(quat_mul(quat, quat_from_mat(data.site_xmat[site]) * [1, -1, -1, -1]))
        if np.linalg.norm(err) < 1e-10:
            break
        mujoco.mj_jacSite(model, data, jac[:3], jac[3:], site)
        J = jac[:, :7]
        q += J.T @ np.linalg.solve(J @ J.T + 1e-6 * np.eye(6), err)
        q = np.clip(q, model.jnt_range[:7, 0], model.jnt_range[:7, 1])
    return q


def _make_renderer(model: mujoco.MjModel, size: int) -> mujoco.Renderer:
    """mujoco.Renderer, on EGL when there is no display even if mujoco was imported before MUJOCO_GL
    was set (mujoco picks its GL backend at import time; GLFW needs a display and, once it has
    failed, leaves the process unable to render)."""
    from mujoco.rendering.classic import gl_context

    ctx = getattr(gl_context, "GLContext", None)
    if not os.environ.get("DISPLAY") and (ctx is None or "glfw" in ctx.__module__):
        from mujoco.egl import GLContext

        gl_context.GLContext = GLContext
    return mujoco.Renderer(model, size, size)


class SceneTaskEnv(gym.Env):
    """What robo's task envs share (PandaTaskEnv, G1BoxLiftV0): the scene file (500 Hz physics), optional
    cameras (image observations, rgb_array rendering), and the spaces + robo spec built from names."""

    scene_xml: ClassVar[str] = ""

    def _open_scene(self, cameras: tuple[str, ...] | list[str], image_size: int, render_mode: str | None) -> None:
        """Check the render arguments, load the scene (`self.model`, `self.data`), check the cameras."""
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.scene_path = resolve_scene(self.scene_xml, type(self))
        self.model = load_scene(self.scene_path)
        if abs(self.model.opt.timestep - PHYSICS_TIMESTEP) > 1e-12:
            raise ValueError(f"{self.scene_path}: timestep {self.model.opt.timestep} s, robo's tasks and controller "
                             f"need {PHYSICS_TIMESTEP} s: include robo:physics.xml (or robo:scene_common.xml)")
        self.data = mujoco.MjData(self.model)
        for cam in cameras:
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
                raise ValueError(f"unknown camera {cam!r} for {type(self).__name__}")
        self.cameras = tuple(cameras)
        self.image_size = int(image_size)
        self.render_mode = render_mode
        self._renderer: mujoco.Renderer | None = None

    def _make_spaces(self, state_names: tuple[str, ...], state_units: str, action_low: np.ndarray,
                     action_names: tuple[str, ...], action_units: str) -> None:
        """action_space (symmetric, `-action_low..action_low`), observation_space and robo_spec."""
        self.action_space = gym.spaces.Box(action_low, -action_low, dtype=np.float32)
        n_state = len(state_names)
        spaces: dict[str, gym.spaces.Space] = {
            # finite but never-binding bounds (m, unitless): the scene fits in a 2 m box
            STATE: gym.spaces.Box(-STATE_BOUND, STATE_BOUND, (n_state,), dtype=np.float32)
        }
        feats = {STATE: Feature((n_state,), "float32", state_names, units=state_units)}
        for cam in self.cameras:
            shape = (self.image_size, self.image_size, 3)
            spaces[IMAGE_PREFIX + cam] = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
            feats[IMAGE_PREFIX + cam] = Feature(shape, "uint8", ("height", "width", "channel"))
        self.observation_space = gym.spaces.Dict(spaces)
        feats[ACTION] = Feature((len(action_names),), "float32", action_names, units=action_units,
                                low=tuple(float(x) for x in action_low), high=tuple(float(x) for x in -action_low))
        self.robo_spec = Spec(feats)

    def _with_images(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """The observation: `state` (float32) and each camera's image."""
        obs = {STATE: state.astype(np.float32)}
        for cam in self.cameras:
            obs[IMAGE_PREFIX + cam] = self._render(cam)
        return obs

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._render(self.cameras[0] if self.cameras else "front")

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _render(self, cam: str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = _make_renderer(self.model, self.image_size)
        self._renderer.update_scene(self.data, camera=cam)
        return self._renderer.render().copy()


class PandaTaskEnv(SceneTaskEnv):
    """Panda + table + task objects; subclasses fill in the class attributes and the four hooks.

    A task of another package subclasses this too (README "Your own tasks"): its `scene_xml` is found
    next to its module and may include robo's pieces by name (robo.sim.scenes)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    scene_xml: ClassVar[str] = ""
    """MJCF of the scene: a file next to the module that sets this, in robo's sim/assets, or a path."""
    task_description: ClassVar[str] = ""
    """The task in words; datasets record it as the LeRobot task text."""
    scripted_expert: ClassVar[str | Callable[..., Any] | None] = None
    """"module:Class" (or the class) of the scripted expert: `(env, noise, seed)` -> `reset()`, `act(obs)`."""
    home_tcp_pos: ClassVar[tuple[float, float, float]] = (0.5, 0.0, 0.2)
    """m: the TCP position at reset (pointing down), reached by IK from the Panda's ready pose."""
    object_names: ClassVar[tuple[str, ...]] = ()
    """Names of the task part of observation.state (what `_object_state` returns)."""

    def __init__(
        self,
        cameras: tuple[str, ...] | list[str] = (),
        image_size: int = 64,
        controller: str = "auto",
        render_mode: str | None = None,
    ) -> None:
        self._open_scene(cameras, image_size, render_mode)
        self.home_q = self._home_q()
        self.ctrl = make_controller(self.model, self.data, controller, q_home=self.home_q)
        self._tcp = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, TCP_SITE)
        self._fq = [
            int(self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n)])
            for n in ("finger_joint1", "finger_joint2")
        ]
        fingers = {mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, n) for n in ("left_finger", "right_finger")}
        self.finger_geoms = {g for g in range(self.model.ngeom) if int(self.model.geom_bodyid[g]) in fingers}
        self._setup()

        self._make_spaces((*pose_names("tcp"), "gripper_width", *self.object_names), "m; rotation axes unitless",
                          np.array([-MAX_DPOS] * 3 + [-MAX_DROT] * 3 + [-1.0], dtype=np.float32),
                          ("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
                          "m (dx..dz), rad (drx..drz), 1 (gripper: -1 open, +1 closed)")

        self.target_pos = np.zeros(3)
        self.target_quat = DOWN_QUAT.copy()
        self.target_width = GRIPPER_MAX_WIDTH
        self.n_steps = 0

    # ------------------------------------------------------------------ subclass hooks

    def _setup(self) -> None:
        """Look up object ids once (called at the end of model construction)."""

    def _reset_objects(self, rng: np.random.Generator) -> None:
        """Write randomised object poses into self.data (qpos / mocap_pos)."""
        raise NotImplementedError

    def _object_state(self) -> np.ndarray:
        """Task part of observation.state, matching `object_names`."""
        raise NotImplementedError

    def _is_success(self) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------------ gym API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[:7] = self.home_q
        d.qpos[self._fq] = GRIPPER_MAX_WIDTH / 2
        self._reset_objects(self.np_random)
        mujoco.mj_forward(m, d)
        self.ctrl.reset()
        self.target_pos = d.site_xpos[self._tcp].copy()
        self.target_quat = quat_from_mat(d.site_xmat[self._tcp])
        self.target_width = GRIPPER_MAX_WIDTH
        self.ctrl.set_ee_target(self.target_pos, self.target_quat, self.target_width)
        self.n_steps = 0
        return self._obs(), {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.target_pos, self.target_quat, self.target_width = ee_delta_target(
            self.target_pos, self.target_quat, action, **ACTION_LIMITS)
        self.ctrl.set_ee_target(self.target_pos, self.target_quat, self.target_width)
        self.ctrl.step(N_SUBSTEPS)
        self.n_steps += 1
        success = self._is_success()
        return self._obs(), float(success), success, False, {"success": success}

    # ------------------------------------------------------------------ state helpers

    @property
    def tcp_pos(self) -> np.ndarray:
        """TCP position, m (view into MjData; copy before keeping it)."""
        return self.data.site_xpos[self._tcp]

    @property
    def tcp_mat(self) -> np.ndarray:
        return self.data.site_xmat[self._tcp].reshape(3, 3)

    @property
    def gripper_width(self) -> float:
        return float(self.data.qpos[self._fq].sum())

    def body_pose(self, body_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), rotation matrix (3, 3)) copies of a body's world pose."""
        return self.data.xpos[body_id].copy(), self.data.xmat[body_id].reshape(3, 3).copy()

    def _obs(self) -> dict[str, np.ndarray]:
        return self._with_images(np.concatenate(
            [self.tcp_pos, rot6d(self.tcp_mat), [self.gripper_width], self._object_state()]))

    def _home_q(self) -> np.ndarray:
        key = (self.scene_path, tuple(self.home_tcp_pos))
        if key not in _HOME_Q_CACHE:
            _HOME_Q_CACHE[key] = solve_ik(self.model, np.array(self.home_tcp_pos), DOWN_QUAT, READY_Q)
        return _HOME_Q_CACHE[key].copy()

    def free_body(self, name: str) -> tuple[int, int]:
        """(body id, qpos address of its free joint) of a named object body."""
        bid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)
        if bid < 0:
            raise ValueError(f"{self.scene_path} has no body {name!r}")
        return bid, int(self.model.jnt_qposadr[self.model.body_jntadr[bid]])

    def _touching(self, geoms_a: set[int], geoms_b: set[int]) -> bool:
        """True when any active contact pairs a geom of `geoms_a` with one of `geoms_b`."""
        d = self.data
        for i in range(d.ncon):
            g1, g2 = int(d.contact.geom1[i]), int(d.contact.geom2[i])
            if (g1 in geoms_a and g2 in geoms_b) or (g2 in geoms_a and g1 in geoms_b):
                return True
        return False


def tcp_to_down_yaw(mat: np.ndarray) -> float:
    """Yaw (rad) of a TCP frame about world z, relative to DOWN_QUAT."""
    rel = mat @ mat_from_quat(DOWN_QUAT).T
    return math.atan2(rel[1, 0], rel[0, 0])
