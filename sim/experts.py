"""Scripted experts for the Panda tasks: waypoint/phase machines on privileged sim state.

    expert = make_expert(env, noise=0.0, seed=0)
    obs, _ = env.reset(seed=0); expert.reset()
    action = expert.act(obs)          # (7,) float32 inside env.action_space

Every expert steers the env's TCP *target* (privileged: `env.unwrapped.target_pos/quat`) toward a
waypoint, at most `MAX_STEP` m / `MAX_ROT` rad per step. `noise` (>= 0) degrades the demos smoothly:
  * per episode, waypoints are perturbed (grasp point, alignment over the goal, yaw) by N(0, noise*sigma);
  * per step, Gaussian noise of std noise * ACTION_SIGMA is added to the action (then clipped).
Each expert scales `noise` by its `NOISE_SCALE` so that noise=1 is "clearly poor" on every task.
`noise=0` is deterministic. The noise stream comes from `seed` and runs on across `reset()`s.

Success over 50 seeds (scripts/bench_sim.py --expert-noise ...), PandaPegInsert-v0:
noise 0: 100%, 0.25: 100%, 0.5: 78%, 0.75: 54%, 1.0: 28%. A flow BC policy (robo train bc, mlp backbone,
3000 steps) on 50 successful demos reached 14% / 20% / 32% / 16% at noise 0 / 0.25 / 0.5 / 0.75.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from robo.geometry import quat_mul, rotvec_from_quat
from robo.sim.tasks.base import DOWN_QUAT, tcp_to_down_yaw, yaw_quat

MAX_STEP = 0.025  # m per step (action bound is 0.03)
MAX_ROT = 0.12  # rad per step (action bound is 0.15)
ACTION_SIGMA = np.array([0.005, 0.005, 0.005, 0.03, 0.03, 0.03, 0.3])  # per unit of noise
OPEN, CLOSE = -1.0, 1.0
CUBE_SIZE = 0.04  # m, edge of the Lift/Stack cubes


def wrap_quarter(yaw: float) -> float:
    """Yaw of a square's face modulo 90 degrees, in [-pi/4, pi/4)."""
    return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4


def body_yaw(mat: np.ndarray) -> float:
    return math.atan2(mat[1, 0], mat[0, 0])


class WaypointExpert:
    """Base: per-episode phase machine; subclasses implement `_plan() -> (pos, yaw, gripper, max_dz)`."""

    NOISE_SCALE = 1.0  # per task, so that noise=1 means "clearly poor demos" for every task

    def __init__(self, env: gym.Env, noise: float = 0.0, seed: int | None = None) -> None:
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.env = env
        self.u: Any = env.unwrapped
        self.noise = float(noise) * self.NOISE_SCALE
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: phase 0 and fresh waypoint perturbations."""
        self.phase = 0
        self.phase_steps = 0
        self._perturb()

    def _perturb(self) -> None:
        """Sample this episode's waypoint perturbations (scaled by noise)."""

    def _plan(self) -> tuple[np.ndarray, float, float, float]:
        raise NotImplementedError

    def _goto(self, phase: int) -> None:
        self.phase, self.phase_steps = phase, 0

    def act(self, obs: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Next action (7,) float32 from the privileged state (`obs` is accepted for the interface)."""
        pos, yaw, grip, max_z = self._plan()
        self.phase_steps += 1
        a = np.zeros(7)
        dp = pos - self.u.target_pos
        n = float(np.linalg.norm(dp[:2]))  # x/y and z are limited separately: x/y alignment never waits
        a[:2] = dp[:2] * (MAX_STEP / n) if n > MAX_STEP else dp[:2]
        a[2] = np.clip(dp[2], -max_z, max_z)
        q_des = quat_mul(yaw_quat(yaw), DOWN_QUAT)
        dr = rotvec_from_quat(quat_mul(q_des, self.u.target_quat * [1, -1, -1, -1]))
        n = float(np.linalg.norm(dr))
        a[3:6] = dr * (MAX_ROT / n) if n > MAX_ROT else dr
        a[6] = grip
        if self.noise > 0:
            a += self.rng.normal(0.0, 1.0, 7) * ACTION_SIGMA * self.noise
        space = self.env.action_space
        return np.clip(a, space.low, space.high).astype(np.float32)

    def track(self) -> np.ndarray:
        """Advance the phase machine on the current state without acting (someone else drives); returns
        the waypoint (3,) m it aims at now. A scripted operator watches progress with it."""
        pos, _, _, _ = self._plan()
        self.phase_steps += 1
        return np.asarray(pos, np.float64)

    def holding(self) -> bool:
        """The object is in the hand (task-specific; False for experts that never grasp)."""
        return bool(self._holding()) if hasattr(self, "_holding") else False

    # helpers
    def _tcp_yaw(self) -> float:
        return tcp_to_down_yaw(self.u.tcp_mat)

    def _near(self, target: np.ndarray, tol_xy: float, tol_z: float) -> bool:
        d = self.u.tcp_pos - target
        return bool(np.linalg.norm(d[:2]) < tol_xy and abs(d[2]) < tol_z)


# ----------------------------------------------------------------------------- peg insertion


class PegInsertExpert(WaypointExpert):
    """approach -> descend -> grasp -> lift -> carry -> align over the hole -> insert.

    Retries: re-grasp when the peg leaves the hand; back to "align" when the peg sits on the rim.
    """

    def _perturb(self) -> None:
        s = self.noise
        self.grasp_off = self.rng.normal(0, 0.003 * s, 3)  # m, grasp point on the peg
        self.align_off = np.append(self.rng.normal(0, 0.002 * s, 2), 0.0)  # m, peg vs hole axis
        self.yaw_off = float(self.rng.normal(0, 0.03 * s))  # rad, peg yaw vs hole

    def _holding(self) -> bool:
        u = self.u
        in_hand = np.linalg.norm(u.peg_pos + [0, 0, 0.015] - u.tcp_pos) < 0.03
        return bool(in_hand and u.gripper_width > 0.015)

    def _plan(self) -> tuple[np.ndarray, float, float, float]:
        u = self.u
        peg, tcp = u.peg_pos, u.tcp_pos.copy()
        grasp = peg + [0.0, 0.0, 0.015] + self.grasp_off
        peg_yaw = wrap_quarter(body_yaw(u.peg_mat))
        if self.phase >= 3 and not self._holding():
            self._goto(0)  # lost the peg: open and start over
        if self.phase == 0:  # above the peg, open, yaw aligned with a peg face
            wp = grasp + [0.0, 0.0, 0.06]
            if self._near(wp, 0.006, 0.01) and abs(self._tcp_yaw() - peg_yaw) < 0.05:
                self._goto(1)
            return wp, peg_yaw, OPEN, MAX_STEP
        if self.phase == 1:  # down around the peg
            if self._near(grasp, 0.004, 0.004):
                self._goto(2)
            return grasp, peg_yaw, OPEN, MAX_STEP
        if self.phase == 2:  # close
            if self.phase_steps >= 3:
                self._goto(3)
            return grasp, peg_yaw, CLOSE, MAX_STEP
        hole = u.hole_pos + self.align_off
        bottom = u.peg_bottom()
        tcp_for = tcp - bottom  # add a peg-bottom position to get the TCP target that puts it there
        yaw = self._tcp_yaw() - peg_yaw + self.yaw_off
        xy_err = float(np.linalg.norm(bottom[:2] - hole[:2]))
        if self.phase == 3:  # lift clear of the fixture
            if bottom[2] > hole[2] + 0.02:
                self._goto(4)
            return np.array([tcp[0], tcp[1], tcp_for[2] + hole[2] + 0.035]), self._tcp_yaw(), CLOSE, MAX_STEP
        if self.phase == 4:  # carry over the hole
            if xy_err < 0.004:
                self._goto(5)
            return tcp_for + hole + [0.0, 0.0, 0.035], yaw, CLOSE, MAX_STEP
        if self.phase == 5:  # align just above the opening
            wp = tcp_for + hole + [0.0, 0.0, 0.008]
            if xy_err < 0.0025 and abs(peg_yaw - self.yaw_off) < 0.05 and abs(wp[2] - tcp[2]) < 0.005:
                self._goto(6)
            return wp, yaw, CLOSE, MAX_STEP
        # phase 6: insert, keep correcting x/y and yaw on the way down
        if bottom[2] > hole[2] - 0.004 and xy_err > 0.004 and self.phase_steps > 3:
            self._goto(5)  # sitting on the rim: back up and re-align
        return tcp_for + hole + [0.0, 0.0, -0.035], yaw, CLOSE, 0.01


# ----------------------------------------------------------------------------- cubes


class _CubePickExpert(WaypointExpert):
    """Phases 0-2 shared by the cube tasks: above the cube -> down around it -> close."""

    GRASP_DZ = 0.005  # m, TCP above the cube centre when grasping

    def _perturb(self) -> None:
        s = self.noise
        self.grasp_off = self.rng.normal(0, 0.003 * s, 3)  # m
        self.place_off = np.append(self.rng.normal(0, 0.004 * s, 2), 0.0)  # m

    def _cube(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _holding(self) -> bool:
        pos, _ = self._cube()
        return bool(np.linalg.norm(pos + [0, 0, self.GRASP_DZ] - self.u.tcp_pos) < 0.03 and self.u.gripper_width > 0.02)

    def _pick(self) -> tuple[np.ndarray, float, float, float] | None:
        """Action target while picking (phases 0-2), None once the cube is grasped (phase >= 3)."""
        pos, mat = self._cube()
        grasp = pos + [0.0, 0.0, self.GRASP_DZ] + self.grasp_off
        yaw = wrap_quarter(body_yaw(mat))
        if self.phase >= 3 and not self._holding():
            self._goto(0)
        if self.phase == 0:
            wp = grasp + [0.0, 0.0, 0.06]
            if self._near(wp, 0.008, 0.012) and abs(self._tcp_yaw() - yaw) < 0.06:
                self._goto(1)
            return wp, yaw, OPEN, MAX_STEP
        if self.phase == 1:
            if self._near(grasp, 0.005, 0.005):
                self._goto(2)
            return grasp, yaw, OPEN, MAX_STEP
        if self.phase == 2:
            if self.phase_steps >= 3:
                self._goto(3)
            return grasp, yaw, CLOSE, MAX_STEP
        return None


class LiftExpert(_CubePickExpert):
    """pick the cube, then straight up."""

    NOISE_SCALE = 2.5  # lifting a 4 cm cube tolerates far more noise than a 1.5 mm clearance

    def _cube(self) -> tuple[np.ndarray, np.ndarray]:
        return self.u.cube_pos, self.u.cube_mat

    def _plan(self) -> tuple[np.ndarray, float, float, float]:
        pick = self._pick()
        if pick is not None:
            return pick
        tcp = self.u.tcp_pos
        return np.array([tcp[0], tcp[1], 0.2]), self._tcp_yaw(), CLOSE, MAX_STEP


class StackExpert(_CubePickExpert):
    """pick A -> lift -> carry over B -> lower -> open -> retreat up."""

    NOISE_SCALE = 2.0

    def _cube(self) -> tuple[np.ndarray, np.ndarray]:
        return self.u.cube_a_pos, self.u.cube_a_mat

    def _holding(self) -> bool:
        return self.phase >= 6 or super()._holding()  # released on purpose from phase 6 on

    def _plan(self) -> tuple[np.ndarray, float, float, float]:
        pick = self._pick()
        if pick is not None:
            return pick
        u = self.u
        a, b, tcp = u.cube_a_pos, u.cube_b_pos + self.place_off, u.tcp_pos.copy()
        tcp_for = tcp - a  # add a cube-A centre position to get the TCP target that puts it there
        yaw = self._tcp_yaw() - wrap_quarter(body_yaw(u.cube_a_mat) - body_yaw(u.cube_b_mat))
        xy_err = float(np.linalg.norm(a[:2] - b[:2]))
        above = b + [0.0, 0.0, 2 * CUBE_SIZE + 0.03]
        if self.phase == 3:  # lift
            if a[2] > b[2] + CUBE_SIZE + 0.02:
                self._goto(4)
            return np.array([tcp[0], tcp[1], (tcp_for + above)[2]]), self._tcp_yaw(), CLOSE, MAX_STEP
        if self.phase == 4:  # carry over B
            if xy_err < 0.004:
                self._goto(5)
            return tcp_for + above, yaw, CLOSE, MAX_STEP
        if self.phase == 5:  # lower onto B
            wp = tcp_for + b + [0.0, 0.0, CUBE_SIZE + 0.004]
            if abs(a[2] - wp[2] + tcp_for[2]) < 0.004 and xy_err < 0.006:
                self._goto(6)
            return wp, yaw, CLOSE, 0.015
        if self.phase == 6:  # release
            if self.phase_steps >= 3:
                self._goto(7)
            return u.target_pos.copy(), self._tcp_yaw(), OPEN, MAX_STEP
        return np.array([tcp[0], tcp[1], 0.2]), self._tcp_yaw(), OPEN, MAX_STEP


def make_expert(env: gym.Env, noise: float = 0.0, seed: int | None = None) -> Any:
    """Scripted expert for `env` (wrapped or not): the one its env class names in `scripted_expert`
    (robo's tasks name the experts above; a user's task names its own, see robo.sim.registry)."""
    from robo.sim.registry import make_expert as _make

    return _make(env, noise=noise, seed=seed)

