"""Joint limits hold (issue 22): no accepted command, under any gains set_gains accepts, drives a joint
past its hard limit; torques stay within their limits; absurd gains are refused.

MuJoCo's own joint-limit constraints (the model's mechanical stops) are switched off here, so what
keeps each joint inside its range is the controller alone, as on a backend without firmware limits.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HOME

from robo.drivers import rt

N_FUZZ_RUNS = 16
"""Random runs, each 6 phases of random accepted gains and 5-14 random accepted commands (joint or TCP
targets or chunks, often at or near the limits) at 5-30 Hz: ~5000 ticks (10 s simulated) per run."""
BOX_LOW, BOX_HIGH = np.array([0.0, -0.7, -0.05]), np.array([0.9, 0.7, 1.0])  # the default workspace box (m)


def _no_mechanical_stops(s):
    s.model.jnt_limited[:7] = 0
    return s


def _gains(rng: np.random.Generator) -> dict:
    """Random gains from the whole accepted range: 20% at the ceiling, some 0, the rest log-uniform."""

    def draw(name: str) -> float:
        hi = rt.GAIN_LIMITS[name]
        lo = 1e-3 if name.startswith("max_") and name.endswith("error") else 0.0
        r = rng.uniform()
        if r < 0.2:
            return hi
        if r < 0.3 and lo == 0.0:
            return 0.0
        return float(np.exp(rng.uniform(np.log(lo or hi * 1e-4), np.log(hi))))

    return {name: [draw(name) for _ in range(7)] if name in ("joint_kp", "joint_kd") else draw(name)
            for name in rt.GAIN_LIMITS if not name.startswith("gripper")}


def _random_command(s, rng: np.random.Generator, mode: int, q_min: np.ndarray, q_max: np.ndarray) -> None:
    """One random command of kind `mode` (one whose pose the workspace box refuses is rejected, harmlessly)."""
    def near_limits(shape):
        u = rng.uniform(size=shape)
        return np.where(rng.uniform(size=shape) < 0.6, np.round(u), u)  # most joints at an end of their range

    if mode == 0:
        inset = rng.choice([0.001, 0.06])  # rad inside the limits
        s.ctrl.set_joint_target(q_min + inset + near_limits(7) * (q_max - q_min - 2 * inset), 0.04)
    elif mode == 1:
        quat = rng.normal(size=4)
        s.ctrl.set_ee_target(rng.uniform(BOX_LOW, BOX_HIGH), quat / np.linalg.norm(quat), 0.04)
    elif mode == 2:
        t = s.ctrl.now() + np.cumsum(rng.uniform(0.02, 0.2, 4))
        q = q_min + 0.001 + near_limits((4, 7)) * (q_max - q_min - 0.002)
        s.ctrl.set_joint_chunk(t, q, np.full(4, 0.04))
    else:
        t = s.ctrl.now() + np.cumsum(rng.uniform(0.02, 0.2, 4))
        quat = rng.normal(size=(4, 4))
        s.ctrl.set_chunk(t, rng.uniform(BOX_LOW, BOX_HIGH, (4, 3)), quat / np.linalg.norm(quat, axis=1, keepdims=True),
                         np.full(4, 0.04))


class Log:
    """Per-tick joint positions and applied torques of one simulation (qpos, ctrl)."""

    def __init__(self, s) -> None:
        lim = s.ctrl.limits()
        self.s, self.q_min, self.q_max, self.tau_max = s, lim["q_min"], lim["q_max"], lim["tau_max"]
        self.max_step = s.cfg.torque_rate_limit / s.ctrl.loop_hz  # N m per tick
        s.ctrl.step(1)  # the first tick starts the rate limiter from gravity compensation
        self.q, self.tau = [s.data.qpos[:7].copy()], [s.data.ctrl[:7].copy()]

    def run(self, ticks: int) -> None:
        s = self.s
        for _ in range(ticks):
            s.ctrl.step(1)
            self.q.append(s.data.qpos[:7].copy())
            self.tau.append(s.data.ctrl[:7].copy())
        if s.ctrl.held:
            s.ctrl.rearm()

    def excess(self) -> np.ndarray:
        """Largest distance past the lower or upper limit per joint (rad, 0 = never past)."""
        q = np.asarray(self.q)
        return np.maximum(0.0, np.maximum(self.q_min - q, q - self.q_max).max(axis=0))

    def check_torques(self) -> None:
        tau = np.asarray(self.tau)
        assert np.all(np.abs(tau) <= self.tau_max + 1e-9)
        assert np.all(np.abs(np.diff(tau, axis=0)) <= self.max_step + 1e-9)


def test_random_accepted_commands_and_gains_never_pass_a_joint_limit(sim):
    rng = np.random.default_rng(22)
    worst = np.zeros(7)
    braked = 0
    for _ in range(N_FUZZ_RUNS):
        s = _no_mechanical_stops(sim())
        log = Log(s)
        for _phase in range(6):
            assert s.ctrl.set_gains(**_gains(rng))
            mode, hz = int(rng.integers(4)), float(rng.choice([5.0, 10.0, 30.0]))
            for _ in range(int(rng.integers(5, 15))):
                _random_command(s, rng, mode, log.q_min, log.q_max)
                log.run(int(round(s.ctrl.loop_hz / hz)))
        worst = np.maximum(worst, log.excess())
        log.check_torques()
        braked += s.ctrl.events()["joint_brake_active"]
        s.ctrl.stop()
    assert worst.max() <= 0.0, f"joints passed their limits by {np.round(worst, 4)} rad"
    assert braked > 0  # the fuzz reached the limits: the braking acted


@pytest.mark.parametrize(
    "gains",
    [{}, {"cart_kp_pos": 1e4}, {"cart_kp_pos": 1e4, "cart_kp_rot": 1e4, "max_pos_error": 1.0, "max_ee_speed": 5.0}],
    ids=["default", "cart_kp_pos_1e4", "stiff_fast_osc"],
)
def test_the_reported_cases_stay_inside(sim, gains):
    """The issue's cases: a 5 Hz stream of joint targets 0.06 rad inside the limits (each joint at one of
    its ends or at home), then far TCP targets, at the default and at stiff Cartesian gains."""
    s = _no_mechanical_stops(sim())
    log = Log(s)
    if gains:
        assert s.ctrl.set_gains(**gains)
    rng = np.random.default_rng(5)
    for _ in range(20):
        for _attempt in range(100):  # a target whose FK leaves the workspace box is rejected: draw again
            ends = np.where(rng.uniform(size=7) < 0.5, log.q_min + 0.06, log.q_max - 0.06)
            if s.ctrl.set_joint_target(np.where(rng.uniform(size=7) < 0.6, ends, HOME), 0.04):
                break
        else:
            pytest.fail("no accepted joint target in 100 draws")
        log.run(100)  # 5 Hz
    for _ in range(20):
        quat = rng.normal(size=4)
        s.ctrl.set_ee_target(rng.uniform(BOX_LOW, BOX_HIGH), quat / np.linalg.norm(quat), 0.04)
        log.run(100)
    assert log.excess().max() <= 0.0, f"joints passed their limits by {np.round(log.excess(), 4)} rad"
    log.check_torques()


def test_set_gains_refuses_gains_beyond_the_ceilings(sim):
    s = sim()
    for name, ceiling in rt.GAIN_LIMITS.items():
        value = [ceiling] * 7 if name in ("joint_kp", "joint_kd") else ceiling
        assert s.ctrl.set_gains(**{name: value}), name  # the ceiling itself is accepted
        for bad in (ceiling * 1.01, 1e30):
            value = [bad] * 7 if name in ("joint_kp", "joint_kd") else bad
            assert s.ctrl.set_gains(**{name: value}) is False, (name, bad)
    assert s.ctrl.events()["gains_rejected"] == 2 * len(rt.GAIN_LIMITS)
    with pytest.raises(ValueError, match=r"cart_kp_pos=1e\+30 must be finite and in \[0, 10000\] \(1/s\^2\)"):
        rt.ControllerConfig(cart_kp_pos=1e30)


def test_normal_motion_is_not_braked(sim):
    """Far from the limits the braking never acts: a TCP move and a joint move at the default gains."""
    s, t = sim(), sim()
    p0, quat0 = s.tcp_pos(), s.tcp_quat()
    for k in range(10):
        assert s.ctrl.set_ee_target(p0 + [0.01 * k, -0.01 * k, 0.005 * k], quat0, 0.04)
        assert t.ctrl.set_joint_target(HOME + 0.05 * k * np.array([1, 1, 1, 1, 1, -1, 1]) / 7, 0.04)
        s.ctrl.step(50)
        t.ctrl.step(50)
    assert np.linalg.norm(s.tcp_pos() - (p0 + [0.09, -0.09, 0.045])) < 0.01  # m: it moved
    assert s.ctrl.events()["joint_brake_active"] == 0 and t.ctrl.events()["joint_brake_active"] == 0
