"""What the operator console adds to a session's control loop, side by side in one run, and how old the
camera frames are when the page shows them.

    python scripts/bench_console.py [--seconds 10] [--rounds 2] [--size 96] [--cameras front]

Rows (each a fresh CellEnv on a sim cell stepping PandaLift-v0 at 10 Hz over its C++ loop at 500 Hz, a
random-weight flow-MLP policy through ChunkExecutor sync, publishing every control period as `robo run
--console` does):
  no console        the hub exists, no server: publish() returns at once (every session's default)
  console, no page  the server runs on its thread, nobody connected
  console + page    headless Chromium shows the page (frames as JPEG over the WebSocket, plots, state)
Figures: the C++ loop's lateness (us), the session loop's lateness (how far each control period's
observation came after its due time, ms), late steps, the cost of publish() in the loop (us), and in
the page: frames shown / published and the frame age at display (capture -> drawn, ms). publish() is
timed as the loop calls it: building the state (lists of the state and action) and the swap; with no
console serving, the loop skips both (`hub.active` is False).
The machine's load changes every figure: quote the median of rounds and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from bench_cell import TASK, stand_in_policy  # scripts/ is on sys.path when this script runs

os.environ.setdefault("MUJOCO_GL", "egl")
ROWS = ("no console", "console, no page", "console + page")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def write_cell(path: Path, cameras: list[str], size: int) -> Path:
    arm = {"control_mode": "ee_delta", "control_hz": 10, "realtime": True}
    res: dict = {"arm": {"type": "sim_panda", "config": arm}}
    for cam in cameras:
        res[cam] = {"type": "mujoco_camera", "config": {"camera": cam, "width": size, "height": size, "fps": 10},
                    "wiring": {"sim": "arm"}}
    path.write_text(yaml.safe_dump({"name": "bench_console", "resources": res}))
    return path


def measure(row: str, cell: Path, policy_dir: Path, seconds: float, browser) -> dict:
    from robo.cells import CellEnv, CellLog
    from robo.cells.run import _publish
    from robo.console import RUN_CONTROLS, ConsoleHub, cell_health
    from robo.console.server import ConsoleServer
    from robo.learn.residual_env import ResidualVecEnv
    from robo.policies import load_policy

    env = CellEnv(cell, TASK, log=CellLog(), job=f"bench_console {row}")
    envs = ResidualVecEnv(TASK, load_policy(policy_dir), 1, 0, env_fn=lambda i: env)
    hub = ConsoleHub("run", controls=RUN_CONTROLS, name="bench")
    hub.health_fn = lambda: cell_health(env)
    server = page = None
    try:
        if row != "no console":
            server = ConsoleServer(hub, host="127.0.0.1", port=0).start()
            if row == "console + page":
                page = browser.new_page()
                page.goto(server.url)
        _, base = envs.reset()
        results: list = []
        for _ in range(20):  # warm-up (first chunk; the page connects and draws) before the measurement
            step = envs.step(base)
            if hub.active:
                _publish(hub, env, envs.raw[0], envs.scaler.unnormalize(base[0]), "policy", results, 0)
            base = step.base
        if page is not None:
            page.wait_for_function("window.consoleStats.frames >= 3", timeout=30000)
            page.evaluate("window.consoleStats.ages = []; window.consoleStats.frames = 0")
        ctrl = env.arm.ctrl
        ctrl.reset_stats()
        n_rows = len(env.log.rows)
        t_obs, costs = [], []
        published0 = hub.seq
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            step = envs.step(base)
            t_obs.append(env.t_obs)
            t0 = time.perf_counter()  # what robo run's loop does each period (the state is built only when active)
            if hub.active:
                _publish(hub, env, envs.raw[0], envs.scaler.unnormalize(base[0]), "policy", results, 0)
            costs.append(time.perf_counter() - t0)
            base = step.base
        s = ctrl.stats()
        period = 1.0 / env.control_hz
        gaps = np.diff(np.array(t_obs))
        over = np.clip(gaps - period, 0.0, None) * 1e3  # how late each period's observation came (ms)
        out = {"late_p50_us": s["lateness_us"]["p50"], "late_p99_us": s["lateness_us"]["p99"],
               "late_p999_us": s["lateness_us"]["p999"], "step_late_p50_ms": float(np.percentile(over, 50)),
               "step_late_p99_ms": float(np.percentile(over, 99)),
               "late_steps": int(sum(r["late"] for r in env.log.rows[n_rows:])), "steps": len(t_obs),
               "publish_p50_us": float(np.percentile(costs, 50) * 1e6),
               "publish_p99_us": float(np.percentile(costs, 99) * 1e6)}
        if page is not None:
            time.sleep(0.3)
            st = page.evaluate("({ages: window.consoleStats.ages, frames: window.consoleStats.frames})")
            ages = np.array(st["ages"], np.float64)
            n_cams = max(1, len(env.cameras))
            out.update(shown=int(st["frames"]) / n_cams, published=hub.seq - published0,
                       age_p50_ms=float(np.percentile(ages, 50)) if len(ages) else float("nan"),
                       age_p99_ms=float(np.percentile(ages, 99)) if len(ages) else float("nan"))
        return out
    finally:
        if page is not None:
            page.close()
        if server is not None:
            server.stop()
        envs.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per row and round (default: 10)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds; the table shows their median (default: 2)")
    ap.add_argument("--size", type=int, default=96, help="camera image size in px (default: 96)")
    ap.add_argument("--cameras", default="front", help="comma-separated cameras of the sim cell (default: front)")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="the browser (Debian's chromium)")
    args = ap.parse_args()
    import torch
    from playwright.sync_api import sync_playwright

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_console_"))
    os.environ.setdefault("ROBO_RUNTIME_DIR", str(tmp / "runtime"))
    cams = [c for c in args.cameras.split(",") if c]
    cell = write_cell(tmp / "cell.yaml", cams, args.size)
    policy_dir = stand_in_policy(tmp / "policy")
    rounds: list[dict[str, dict]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(tmp / "chromium"), executable_path=args.chromium,
                                                        args=CHROMIUM_ARGS, headless=True)
        try:
            for r in range(args.rounds):
                order = ROWS if r % 2 == 0 else ROWS[::-1]  # alternate, so drift in the load hits every row alike
                rounds.append({row: measure(row, cell, policy_dir, args.seconds, browser) for row in order})
        finally:
            browser.close()
    load = os.getloadavg()
    print(f"sim cell, {TASK} at 10 Hz, C++ loop 500 Hz, {len(cams)} camera(s) {args.size}x{args.size}; {args.rounds} "
          f"round(s) x {args.seconds:g} s per row, median of rounds; load average {load[0]:.1f} (2 cores)")
    cols = [("late_p50_us", "loop late p50 us", "{:.0f}"), ("late_p99_us", "p99 us", "{:.0f}"),
            ("late_p999_us", "p99.9 us", "{:.0f}"), ("step_late_p50_ms", "step late p50 ms", "{:.2f}"),
            ("step_late_p99_ms", "p99 ms", "{:.2f}"), ("late_steps", "late steps", "{:.0f}"),
            ("publish_p50_us", "publish p50 us", "{:.1f}"), ("publish_p99_us", "p99 us", "{:.1f}"),
            ("shown", "frames shown", "{:.0f}"), ("published", "/ published", "{:.0f}"),
            ("age_p50_ms", "frame age p50 ms", "{:.1f}"), ("age_p99_ms", "p99 ms", "{:.1f}")]
    print(f"{'':<18}" + "".join(f"{label:>17}" for _, label, _ in cols))
    for row in ROWS:
        cells = []
        for key, _, fmt in cols:
            vals = [rd[row][key] for rd in rounds if key in rd[row]]
            cells.append(fmt.format(float(np.median(vals))) if vals else "-")
        print(f"{row:<18}" + "".join(f"{c:>17}" for c in cells))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
