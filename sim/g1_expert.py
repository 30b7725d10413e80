"""Scripted expert for G1BoxLift-v0: both hands beside the box, down to its middle, in against its
sides, squeeze, lift. A phase machine on privileged sim state (`env.unwrapped`), like the Panda experts
(robo.sim.experts): `noise` perturbs the per-episode waypoints and adds Gaussian action noise.

    expert = make_expert(env, noise=0.0, seed=0)        # robo.sim.experts.make_expert
    obs, _ = env.reset(seed=0); expert.reset()
    action = expert.act(obs)                             # (7,) float32 inside env.action_space

Success over 20 seeds against the noise knob in units of the unscaled noise (NOISE_SCALE x noise):
0: 100%, 1: 100%, 2: 95%, 3: 40%, 4: 25%, 6: 10% (so `noise=1` here is 2.5 of those: clearly poor). The
failures come from where the hands meet the box, and from squeeze commands that flip to "open" mid-lift.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robo.sim.tasks.g1_box_lift_v0 import BOX_HALF, MAX_DPOS

MAX_STEP = 0.016  # m per step and hand (the action bound is 0.02 per axis)
HAND_RADIUS = 0.035  # m, rubber-hand capsule
CLEARANCE = 0.045  # m between a hand and the box side before pressing in
ACTION_SIGMA = np.array([0.003] * 6 + [0.3])  # per unit of noise
OPEN, SQUEEZE = -1.0, 1.0


class G1BoxLiftExpert:
    """approach (beside and above the box) -> descend -> close in -> squeeze -> lift."""

    NOISE_SCALE = 2.5  # noise=1 is "clearly poor" (see the module docstring)

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
        self.phase, self.phase_steps = 0, 0
        s = self.noise
        self.grasp_off = self.rng.normal(0.0, 0.006 * s, 3)  # m, where the hands meet the box
        self.lift_off = float(self.rng.normal(0.0, 0.01 * s))  # m, lift height
        # waypoint tolerance (m): noisy actions keep the targets a few sigma off the waypoints
        self.tol = 0.004 + 2.0 * float(ACTION_SIGMA[0]) * s

    def _goto(self, phase: int) -> None:
        self.phase, self.phase_steps = phase, 0

    def _plan(self) -> tuple[np.ndarray, float]:
        """(2, 3) hand waypoints (world) and the squeeze command."""
        u = self.u
        box = u.box_pos + self.grasp_off
        side = np.array([0.0, BOX_HALF[1] + HAND_RADIUS, 0.0])
        wide = side + [0.0, CLEARANCE, 0.0]
        palms = u.palm_pos
        near = bool(np.all(np.linalg.norm(palms - u.target_pos, axis=1) < 0.012 + self.tol))
        if self.phase >= 3 and box[2] < u.rest_z - 0.02:
            self._goto(0)  # dropped (below the table top height): start over
        if self.phase == 0:  # beside the box, above its middle, hands apart
            wp = np.stack([box + wide + [0, 0, 0.06], box - wide + [0, 0, 0.06]])
            if near and np.allclose(u.target_pos, wp, atol=self.tol):
                self._goto(1)
            return wp, OPEN
        if self.phase == 1:  # down to the box's middle height
            wp = np.stack([box + wide, box - wide])
            if near and np.allclose(u.target_pos, wp, atol=self.tol):
                self._goto(2)
            return wp, OPEN
        if self.phase == 2:  # in against the sides
            wp = np.stack([box + side, box - side])
            if np.allclose(u.target_pos, wp, atol=self.tol):
                self._goto(3)
            return wp, OPEN
        if self.phase == 3:  # squeeze
            if self.phase_steps >= 4:
                self._goto(4)
            return u.target_pos.copy(), SQUEEZE
        # lift, centred on the box so that both hands keep pressing
        top = u.rest_z + 0.14 + self.lift_off
        wp = u.target_pos.copy()
        wp[:, 2] = top + (wp[:, 2] - wp[:, 2].mean())
        wp[:, 0] = box[0]
        return wp, SQUEEZE

    def act(self, obs: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Next action (7,) float32 from the privileged state (`obs` is accepted for the interface)."""
        wp, squeeze = self._plan()
        self.phase_steps += 1
        a = np.zeros(7)
        for k in range(2):
            d = wp[k] - self.u.target_pos[k]
            n = float(np.linalg.norm(d))
            a[3 * k:3 * k + 3] = d * (MAX_STEP / n) if n > MAX_STEP else d
        a[6] = squeeze
        if self.noise > 0:
            a += self.rng.normal(0.0, 1.0, 7) * ACTION_SIGMA * self.noise
        a[:6] = np.clip(a[:6], -MAX_DPOS, MAX_DPOS)
        space = self.env.action_space
        return np.clip(a, space.low, space.high).astype(np.float32)
