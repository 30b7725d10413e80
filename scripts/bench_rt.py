"""Benchmark the real-time controller against the same work done in Python, side by side.

    python scripts/bench_rt.py [--seconds 5] [--osc-ticks 20000] [--json out.json]

1. Loop timing at 1 kHz on the MuJoCo Panda (model timestep 0.001 s): wake lateness (wake time minus
   the absolute deadline) of
   - the C++ loop (robo.drivers.rt, own thread, SCHED_FIFO + mlock when the OS allows),
   - the C++ loop with SCHED_FIFO switched off (rt_priority=0), to separate language from scheduler,
   - a Python loop doing the same work per tick (read state, OSC through pinocchio's Python API,
     write torques, mj_step), sleeping to absolute deadlines with time.sleep, and the same Python
     loop under SCHED_FIFO when the OS allows it.
2. OSC compute per tick: the C++ controller's own per-tick compute time (model + OSC + limits) in
   fast mode vs the same math through pinocchio's Python API + numpy.

Figures are machine-dependent: quote them with the machine (`nproc`, kernel) they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import mujoco
import numpy as np
import pinocchio as pin

from robo.drivers import rt

ASSETS = Path(rt.default_urdf_path()).parent
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


# ------------------------------------------------------------------------------------------------
# The same OSC math in Python (pinocchio + numpy), as a Python controller would write it
# ------------------------------------------------------------------------------------------------
class PythonOSC:
    def __init__(self, urdf: Path, armature: np.ndarray, cfg: rt.ControllerConfig):
        full = pin.buildModelFromUrdf(str(urdf))
        arm = {f"joint{i}" for i in range(1, 8)}
        lock = [j for j in range(1, full.njoints) if full.names[j] not in arm]
        self.model = pin.buildReducedModel(full, lock, pin.neutral(full))
        self.model.armature = np.asarray(armature, dtype=float)
        self.data = self.model.createData()
        self.tcp = self.model.getFrameId("tcp")
        self.cfg = cfg
        self.posture = HOME.copy()

    def torque(self, q, dq, p_ref, R_ref):
        m, d, c = self.model, self.data, self.cfg
        M = pin.crba(m, d, q)
        M = np.triu(M) + np.triu(M, 1).T
        nle = pin.nonLinearEffects(m, d, q, dq)
        pin.computeJointJacobians(m, d, q)
        pin.updateFramePlacements(m, d)
        J = pin.getFrameJacobian(m, d, self.tcp, pin.LOCAL_WORLD_ALIGNED)
        oMf = d.oMf[self.tcp]
        e_pos = p_ref - oMf.translation
        e_rot = pin.log3(R_ref @ oMf.rotation.T)
        for e, lim in ((e_pos, c.max_pos_error), (e_rot, c.max_rot_error)):
            n = np.linalg.norm(e)
            if n > lim:
                e *= lim / n
        M_inv = np.linalg.inv(M)
        lam_inv = J @ M_inv @ J.T
        w, V = np.linalg.eigh(lam_inv)
        lam = (V / np.maximum(w, c.osc_min_eig)) @ V.T
        v = J @ dq
        a = np.concatenate(
            [
                c.cart_kp_pos * e_pos - 2 * np.sqrt(c.cart_kp_pos) * v[:3],
                c.cart_kp_rot * e_rot - 2 * np.sqrt(c.cart_kp_rot) * v[3:],
            ]
        )
        J_bar = M_inv @ J.T @ lam
        N_t = np.eye(7) - J.T @ J_bar.T
        tau_posture = c.nullspace_kp * (self.posture - q) - c.nullspace_kd * dq
        tau = J.T @ (lam @ a) + N_t @ tau_posture + nle
        return np.clip(tau, -self.model.effortLimit, self.model.effortLimit)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def percentiles(samples_us) -> dict:
    a = np.sort(np.asarray(samples_us, dtype=float))
    if a.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "p999": float("nan"), "max": float("nan"), "n": 0}
    q = lambda f: float(a[min(a.size - 1, int(np.ceil(f * a.size)) - 1)])  # noqa: E731 (nearest rank)
    return {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": float(a[-1]), "n": int(a.size)}


def make_sim(timestep: float):
    model = mujoco.MjModel.from_xml_path(str(ASSETS / "panda.xml"))
    model.opt.timestep = timestep
    data = mujoco.MjData(model)
    data.qpos[:7] = HOME
    data.qpos[7:9] = 0.04
    mujoco.mj_forward(model, data)
    return model, data


def tcp_target(model, data):
    site = model.site("tcp").id
    return data.site_xpos[site] + np.array([0.05, 0.0, 0.0]), data.site_xmat[site].reshape(3, 3).copy()


def steal_ms() -> float:
    """CPU time the hypervisor took from this VM so far (ms, all CPUs); 0 where /proc/stat lacks it."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return float(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def can_fifo() -> bool:
    try:
        old = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(80))
        os.sched_setscheduler(0, old[0], old[1])
        return True
    except (PermissionError, OSError, AttributeError):
        return False


# ------------------------------------------------------------------------------------------------
# 1. loop timing
# ------------------------------------------------------------------------------------------------
def cpp_loop(seconds: float, rt_priority: int) -> dict:
    model, data = make_sim(0.001)
    cfg = rt.ControllerConfig(rt_priority=rt_priority, watchdog_timeout_s=seconds + 10.0)
    ctrl = rt.MujocoController(model, data, config=cfg)
    ctrl.reset()
    p, R = tcp_target(model, data)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, R.flatten())
    ctrl.start(realtime=True)
    ctrl.set_ee_target(p, quat, 0.04)
    time.sleep(seconds)
    ctrl.stop()
    st = ctrl.stats()
    lat = dict(st["lateness_us"])
    lat["max"] = st["max_lateness_us"]
    return {
        "lateness_us": lat,
        "compute_us": st["compute_us"],
        "ticks": st["ticks"],
        "overruns": st["overruns"],
        "rt_status": ctrl.rt_status(),
    }


def python_loop(seconds: float, fifo: bool) -> dict:
    model, data = make_sim(0.001)
    osc = PythonOSC(ASSETS / "panda.urdf", model.dof_armature[:7], rt.ControllerConfig())
    p_ref, R_ref = tcp_target(model, data)
    if fifo:
        old = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(80))
    period_ns = 1_000_000
    n = int(seconds * 1000)
    lateness = np.empty(n)
    compute = np.empty(n)
    overruns = 0
    try:
        deadline = time.monotonic_ns() + period_ns
        for i in range(n):
            remaining = deadline - time.monotonic_ns()
            if remaining > 0:
                time.sleep(remaining * 1e-9)
            wake = time.monotonic_ns()
            lateness[i] = (wake - deadline) * 1e-3
            q, dq = data.qpos[:7].copy(), data.qvel[:7].copy()
            data.ctrl[:7] = osc.torque(q, dq, p_ref, R_ref)
            compute[i] = (time.monotonic_ns() - wake) * 1e-3
            mujoco.mj_step(model, data)
            deadline += period_ns
            end = time.monotonic_ns()
            if end > deadline:
                overruns += 1
                while deadline <= end:
                    deadline += period_ns
    finally:
        if fifo:
            os.sched_setscheduler(0, old[0], old[1])
    return {"lateness_us": percentiles(lateness), "compute_us": percentiles(compute), "ticks": n, "overruns": overruns}


# ------------------------------------------------------------------------------------------------
# 2. OSC compute per tick
# ------------------------------------------------------------------------------------------------
def cpp_osc(ticks: int) -> dict:
    model, data = make_sim(0.002)
    ctrl = rt.MujocoController(model, data, config=rt.ControllerConfig(watchdog_timeout_s=1e6))
    ctrl.reset()
    site = model.site("tcp").id
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, data.site_xmat[site])
    p0 = data.site_xpos[site].copy()
    ctrl.step(100)
    ctrl.reset_stats()
    for k in range(ticks // 50):  # a moving target so the OSC does real work
        ctrl.set_ee_target(p0 + 0.05 * np.array([np.sin(0.1 * k), np.cos(0.1 * k) - 1, 0.0]), quat, 0.04)
        ctrl.step(50)
    return ctrl.stats()["compute_us"]


def python_osc(ticks: int) -> dict:
    model, _ = make_sim(0.002)
    osc = PythonOSC(ASSETS / "panda.urdf", model.dof_armature[:7], rt.ControllerConfig())
    rng = np.random.default_rng(0)
    lo, hi = osc.model.lowerPositionLimit, osc.model.upperPositionLimit
    qs = HOME + rng.uniform(-0.3, 0.3, (ticks, 7))
    qs = np.clip(qs, lo + 0.05, hi - 0.05)
    dqs = rng.uniform(-0.5, 0.5, (ticks, 7))
    p_ref, R_ref = np.array([0.4, 0.0, 0.5]), np.diag([1.0, -1.0, -1.0])
    times = np.empty(ticks)
    for i in range(ticks):
        t0 = time.perf_counter_ns()
        osc.torque(qs[i], dqs[i], p_ref, R_ref)
        times[i] = (time.perf_counter_ns() - t0) * 1e-3
    return percentiles(times)


# ------------------------------------------------------------------------------------------------
def row(name: str, p: dict, extra: str = "") -> str:
    return f"  {name:<34} {p['p50']:>9.1f} {p['p99']:>9.1f} {p['p999']:>9.1f} {p['max']:>9.1f}  {extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each loop run (s)")
    ap.add_argument("--osc-ticks", type=int, default=20000, help="ticks for the OSC compute comparison")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    fifo_ok = can_fifo()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
        f"SCHED_FIFO allowed: {fifo_ok}"
    )
    results: dict = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "sched_fifo_allowed": fifo_ok}}

    print(f"\n1. 1 kHz loop, {args.seconds:.0f} s each: wake lateness (us)")
    print(f"  {'loop':<34} {'p50':>9} {'p99':>9} {'p99.9':>9} {'max':>9}  overruns / compute p50 / VM steal")
    runs = [
        ("C++ loop (SCHED_FIFO + mlock)", lambda: cpp_loop(args.seconds, 80)),
        ("C++ loop (SCHED_OTHER)", lambda: cpp_loop(args.seconds, 0)),
        ("Python loop (SCHED_OTHER)", lambda: python_loop(args.seconds, False)),
    ]
    if fifo_ok:
        runs.append(("Python loop (SCHED_FIFO)", lambda: python_loop(args.seconds, True)))
    loops = {}
    for name, fn in runs:
        steal0 = steal_ms()
        r = fn()
        r["steal_ms"] = steal_ms() - steal0
        loops[name] = r
        extra = f"{r['overruns']} / {r['compute_us']['p50']:.1f} us / steal {r['steal_ms']:.0f} ms"
        if "rt_status" in r and r["rt_status"]["warning"]:
            extra += "  [" + r["rt_status"]["warning"].strip()[:60] + "...]"
        print(row(name, r["lateness_us"], extra), flush=True)
    results["loops"] = loops
    ratio = loops["Python loop (SCHED_OTHER)"]["lateness_us"]["p99"] / max(
        loops["C++ loop (SCHED_FIFO + mlock)"]["lateness_us"]["p99"], 1e-9
    )
    print(f"  p99 lateness, Python (SCHED_OTHER) / C++ (FIFO): {ratio:.1f}x  (target >= 3x)")
    results["p99_ratio_python_over_cpp"] = ratio

    print(f"\n2. OSC compute per tick, {args.osc_ticks} ticks (us)")
    print(f"  {'implementation':<34} {'p50':>9} {'p99':>9} {'p99.9':>9} {'max':>9}")
    c = cpp_osc(args.osc_ticks)
    p = python_osc(args.osc_ticks)
    print(row("C++ (model + OSC + limits)", c))
    print(row("Python (pinocchio + numpy)", p))
    osc_ratio = p["p50"] / max(c["p50"], 1e-9)
    print(f"  p50 ratio Python / C++: {osc_ratio:.1f}x  (target: C++ p50 <= 20 us)")
    results["osc_us"] = {"cpp": c, "python": p, "p50_ratio": osc_ratio}

    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
