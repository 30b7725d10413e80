"""Benchmark the real-time controller's loop timing against the same work done in Python, side by side.

    python scripts/bench_rt.py [--seconds 2] [--rounds 5] [--osc-ticks 20000] [--python-spin-us 0] [--json out.json]

1. Loop timing at 1 kHz on the MuJoCo Panda (model timestep 0.001 s), for each scheduling policy the
   OS grants (SCHED_FIFO at priority 80 when allowed, and SCHED_OTHER):
   - C++ sleep: the C++ loop (robo.drivers.rt, own thread) with wake_mode="sleep" (clock_nanosleep to
     the absolute deadline),
   - C++ sleep+spin: wake_mode="spin" (sleep to a calibrated margin before the deadline, then spin),
   - Python sleep: a Python loop doing the same work per tick (read state, OSC through pinocchio's
     Python API, write torques, mj_step), sleeping to absolute deadlines with time.sleep;
     `--python-spin-us M` adds the same Python loop spinning the last M us.
   Per mode: wake lateness (wake time minus the absolute deadline) p50/p99/p99.9/max, overruns, the
   loop's own CPU use (CPU time of the loop thread / wall time, in % of one core) and the time it spent
   spinning. Every mode runs once per round, the order rotated each round so that load drifting
   during the run hits all modes alike; the table gives the median over rounds of each figure, so one
   noisy round does not decide.
2. OSC compute per tick: the C++ controller's own per-tick compute time (model + OSC + limits) in
   fast mode vs the same math through pinocchio's Python API + numpy.

Figures are machine-dependent: quote them with the machine line printed first (CPUs, kernel, load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import pinocchio as pin

from robo.drivers import rt

ASSETS = Path(rt.default_urdf_path()).parent
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
FIFO_PRIORITY = 80  # the C++ loop's default rt_priority; the Python loop gets the same
TARGET_P99_US = 20.0  # issue 24: C++ p99 lateness <= 20 us and >= 3x better than Python at the same policy
TARGET_RATIO = 3.0


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


def rival_rt_processes() -> list[str]:
    """Other user processes whose main thread runs SCHED_FIFO/RR at or above the loop's priority: they
    outrank the loop and make its lateness theirs ("pid name policy/priority"); kernel threads skipped."""
    rivals = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            text = stat.read_text()
            name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
            ppid, rt_prio, policy = int(fields[1]), int(fields[37]), int(fields[38])
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
        if pid != os.getpid() and ppid != 2 and pid != 2 and policy in (1, 2) and rt_prio >= FIFO_PRIORITY:
            rivals.append(f"{pid} {name} {'FIFO' if policy == 1 else 'RR'}/{rt_prio}")
    return rivals


def can_fifo() -> bool:
    try:
        old = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
        os.sched_setscheduler(0, old[0], old[1])
        return True
    except (PermissionError, OSError, AttributeError):
        return False


# ------------------------------------------------------------------------------------------------
# 1. loop timing: one run of one mode -> {"lateness_us": {p50, p99, p999, max}, "overruns", "cpu_pct", ...}
# ------------------------------------------------------------------------------------------------
def cpp_loop(seconds: float, rt_priority: int, wake_mode: str) -> dict:
    model, data = make_sim(0.001)
    cfg = rt.ControllerConfig(rt_priority=rt_priority, wake_mode=wake_mode, watchdog_timeout_s=seconds + 10.0)
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
    lat["max"] = st["max_lateness_us"]  # over all ticks, not only the stats window
    status = ctrl.rt_status()
    return {
        "lateness_us": lat,
        "wakeup_us": dict(st["wakeup_us"]),
        "compute_p50_us": st["compute_us"]["p50"],
        "ticks": st["ticks"],
        "overruns": st["overruns"],
        "cpu_pct": 100.0 * st["loop_cpu_fraction"],
        "spin_pct": 100.0 * st["spin_s"] / max(st["loop_wall_s"], 1e-9),
        "spin_margin_us": st["spin_margin_us"],
        "late_wakeup_pct": 100.0 * st["late_wakeups"] / max(st["wakeup_us"]["n"], 1),
        "warning": status["warning"],
    }


def python_loop(seconds: float, fifo: bool, spin_us: float = 0.0) -> dict:
    """The same tick in Python: sleep (time.sleep) to `spin_us` before each absolute deadline, then
    spin on time.monotonic_ns (spin_us = 0: sleep only)."""
    model, data = make_sim(0.001)
    osc = PythonOSC(ASSETS / "panda.urdf", model.dof_armature[:7], rt.ControllerConfig())
    p_ref, R_ref = tcp_target(model, data)
    if fifo:
        old = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
    period_ns, margin_ns = 1_000_000, int(spin_us * 1e3)
    n = int(seconds * 1000)
    lateness = np.empty(n)
    compute = np.empty(n)
    overruns = spin_ns = 0
    try:
        cpu0, wall0 = time.thread_time_ns(), time.monotonic_ns()
        deadline = wall0 + period_ns
        for i in range(n):
            remaining = deadline - margin_ns - time.monotonic_ns()
            if remaining > 0:
                time.sleep(remaining * 1e-9)
            wake = time.monotonic_ns()
            spin_start = wake
            while wake < deadline:
                wake = time.monotonic_ns()
            spin_ns += wake - spin_start
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
        cpu, wall = time.thread_time_ns() - cpu0, time.monotonic_ns() - wall0
    finally:
        if fifo:
            os.sched_setscheduler(0, old[0], old[1])
    return {
        "lateness_us": percentiles(lateness),
        "compute_p50_us": percentiles(compute)["p50"],
        "ticks": n,
        "overruns": overruns,
        "cpu_pct": 100.0 * cpu / wall,
        "spin_pct": 100.0 * spin_ns / wall,
        "spin_margin_us": spin_us,
        "warning": "",
    }


@dataclass
class Mode:
    name: str
    policy: str  # "SCHED_FIFO" or "SCHED_OTHER"
    run: Callable[[float], dict]  # seconds -> one run's figures

    @property
    def label(self) -> str:
        return label(self.name, self.policy)


def label(name: str, policy: str) -> str:
    return f"{name} ({policy.removeprefix('SCHED_')})"


def loop_modes(fifo_ok: bool, python_spin_us: float) -> list[Mode]:
    modes = []
    for policy in (["SCHED_FIFO"] if fifo_ok else []) + ["SCHED_OTHER"]:
        prio = FIFO_PRIORITY if policy == "SCHED_FIFO" else 0
        fifo = policy == "SCHED_FIFO"
        modes += [
            Mode("C++ sleep", policy, lambda s, prio=prio: cpp_loop(s, prio, "sleep")),
            Mode("C++ sleep+spin", policy, lambda s, prio=prio: cpp_loop(s, prio, "spin")),
            Mode("Python sleep", policy, lambda s, fifo=fifo: python_loop(s, fifo)),
        ]
        if python_spin_us > 0:
            run = lambda s, fifo=fifo: python_loop(s, fifo, python_spin_us)  # noqa: E731
            modes.append(Mode(f"Python sleep+spin {python_spin_us:.0f} us", policy, run))
    return modes


def run_rounds(modes: list[Mode], rounds: int, seconds: float) -> dict[str, list[dict]]:
    """Every mode once per round, the order rotated each round; returns each mode's runs."""
    runs: dict[str, list[dict]] = {m.label: [] for m in modes}
    for r in range(rounds):
        order = modes[r % len(modes) :] + modes[: r % len(modes)]
        for m in order:
            steal0, rivals = steal_ms(), set(rival_rt_processes())
            result = m.run(seconds)
            result["steal_ms"] = steal_ms() - steal0
            result["rival_rt"] = sorted(rivals | set(rival_rt_processes()))
            runs[m.label].append(result)
        p99 = ", ".join(f"{m.label} {runs[m.label][-1]['lateness_us']['p99']:.0f}" for m in modes)
        steal = sum(runs[m.label][-1]["steal_ms"] for m in modes)
        rivals = sorted({x for m in modes for x in runs[m.label][-1]["rival_rt"]})
        rival_note = (
            f"; real-time processes at or above priority {FIFO_PRIORITY}: {', '.join(rivals)}" if rivals else ""
        )
        print(f"  round {r + 1}/{rounds}: p99 (us) {p99}; VM steal {steal:.0f} ms{rival_note}", flush=True)
    return runs


def median_of_rounds(runs: list[dict]) -> dict:
    med = lambda key, sub=None: float(np.median([r[key][sub] if sub else r[key] for r in runs]))  # noqa: E731
    return {
        "lateness_us": {k: med("lateness_us", k) for k in ("p50", "p99", "p999", "max")},
        "p99_range_us": [min(r["lateness_us"]["p99"] for r in runs), max(r["lateness_us"]["p99"] for r in runs)],
        "worst_max_us": max(r["lateness_us"]["max"] for r in runs),
        "overruns": med("overruns"),
        "cpu_pct": med("cpu_pct"),
        "spin_pct": med("spin_pct"),
        "spin_margin_us": med("spin_margin_us"),
        "compute_p50_us": med("compute_p50_us"),
        "steal_ms": med("steal_ms"),
        # the OS's wake-up latency in the same runs (C++ only): what the loop's lateness would be
        # without the spin, measured under the very same load
        "wakeup_us": {k: med("wakeup_us", k) for k in ("p50", "p99", "p999")} if "wakeup_us" in runs[0] else None,
        "late_wakeup_pct": med("late_wakeup_pct") if "late_wakeup_pct" in runs[0] else None,
    }


def p99_ratios(runs: dict[str, list[dict]], slow: str, fast: str) -> list[float]:
    """Per round: p99 lateness of `slow` / p99 of `fast` (the same round, so the same load)."""
    return [a["lateness_us"]["p99"] / max(b["lateness_us"]["p99"], 1e-3) for a, b in zip(runs[slow], runs[fast])]


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


def loop_report(runs: dict[str, list[dict]], modes: list[Mode]) -> dict:
    print(
        f"\n  {'median of rounds':<34} {'p50':>7} {'p99':>7} {'p99.9':>7} {'max':>7}  overruns  CPU %  spin %"
        f"  margin  steal  p99 range over rounds"
    )
    summary = {}
    for m in modes:
        s = summary[m.label] = median_of_rounds(runs[m.label])
        lat, (lo, hi) = s["lateness_us"], s["p99_range_us"]
        print(
            f"  {m.label:<34} {lat['p50']:>7.1f} {lat['p99']:>7.1f} {lat['p999']:>7.1f} {lat['max']:>7.0f}"
            f"  {s['overruns']:>8.0f} {s['cpu_pct']:>6.1f} {s['spin_pct']:>7.1f} {s['spin_margin_us']:>7.0f}"
            f" {s['steal_ms']:>6.0f}  {lo:.0f}..{hi:.0f}"
        )
        warnings = {r["warning"].strip()[:70] for r in runs[m.label] if r["warning"]}
        if warnings:
            print(f"      OS refused: {'; '.join(warnings)}...")
    print(
        "  (lateness in us; CPU % / spin %: the loop thread's CPU time / time spinning, per wall time, in % of one"
        " core; margin: spin margin at the end (us); steal: VM steal during the run, all CPUs (ms))"
    )
    verdicts = {}
    for policy in sorted({m.policy for m in modes}, reverse=True):
        cpp, py, sleep = (label(n, policy) for n in ("C++ sleep+spin", "Python sleep", "C++ sleep"))
        ratios = p99_ratios(runs, py, cpp)
        spin_gain = p99_ratios(runs, sleep, cpp)
        cpp_p99, ratio = summary[cpp]["lateness_us"]["p99"], float(np.median(ratios))
        met = cpp_p99 <= TARGET_P99_US and ratio >= TARGET_RATIO
        print(
            f"  {policy}: p99 Python sleep / C++ sleep+spin: median {ratio:.1f}x (rounds {min(ratios):.1f}x"
            f"..{max(ratios):.1f}x); C++ sleep / C++ sleep+spin: {float(np.median(spin_gain)):.1f}x;"
            f" target (C++ p99 <= {TARGET_P99_US:.0f} us, >= {TARGET_RATIO:.0f}x): {'met' if met else 'NOT met'}"
        )
        wake, late = summary[cpp]["wakeup_us"], summary[cpp]["lateness_us"]
        print(
            f"    same {cpp} runs, p50/p99/p99.9 (us): OS wake-up latency {wake['p50']:.1f} / {wake['p99']:.1f}"
            f" / {wake['p999']:.1f} -> lateness after the spin {late['p50']:.1f} / {late['p99']:.1f}"
            f" / {late['p999']:.1f}; sleeps that ended after the deadline: {summary[cpp]['late_wakeup_pct']:.2f} %"
        )
        verdicts[policy] = {
            "p99_ratio_python_over_cpp": ratios,
            "p99_ratio_sleep_over_spin": spin_gain,
            "target_met": met,
        }
    return {"summary": summary, "verdicts": verdicts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="duration of each loop run (s)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every loop mode (median over rounds)")
    ap.add_argument("--osc-ticks", type=int, default=20000, help="ticks for the OSC compute comparison")
    ap.add_argument("--python-spin-us", type=float, default=0.0, help="also run the Python loop spinning this long")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures (every round) here")
    args = ap.parse_args()
    if args.seconds <= 0 or args.rounds < 1:
        ap.error(f"--seconds={args.seconds} must be > 0 and --rounds={args.rounds} >= 1")

    fifo_ok = can_fifo()
    load = os.getloadavg()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
        f"SCHED_FIFO allowed: {fifo_ok}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "sched_fifo_allowed": fifo_ok,
            "loadavg_start": load,
        },
        "args": vars(args) | {"json": str(args.json)},
    }

    modes = loop_modes(fifo_ok, args.python_spin_us)
    print(f"\n1. 1 kHz loop, wake lateness: {args.rounds} rounds x {args.seconds:g} s per mode (order rotated)")
    runs = run_rounds(modes, args.rounds, args.seconds)
    results["loops"] = {"rounds": runs} | loop_report(runs, modes)
    results["machine"]["loadavg_end"] = os.getloadavg()
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in results['machine']['loadavg_end'])}")

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
