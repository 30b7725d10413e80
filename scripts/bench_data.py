"""Benchmark training windows: windows/s and peak RSS of robo's reader (video decoded whole into RAM;
in blocks under two cache budgets) beside LeRobot 0.4.4's own loader, on the same robo-written sets.

    python scripts/bench_data.py                    # ~10 min on 2 cores (LeRobot side where its venv is)
    python scripts/bench_data.py --quick            # small sets, few windows (smoke test, ~1-2 min)
    bash scripts/lerobot_env.sh                     # once, for the LeRobot side (.venv-lerobot)

Sets, written by robo's DatasetWriter (H.264, GOP 2) at 10 fps, episodes of 100 frames: `small` 50
episodes, `large` 200 episodes, each state-only (9-d state, 7-d action) and with two 64 x 64 cameras
(117 MiB and 469 MiB decoded). Windows as a diffusion policy trains on them: 2 observation steps, 16
action steps, batches of 64 from a torch DataLoader with num_workers 0, shuffled:

- robo RAM: `Dataset.windows()` with the default budget (2 GiB: the sets' video fits, decoded whole
  at start, that time reported as start-up), `DataLoader(windows, shuffle=True)`;
- robo blocks@N: `windows(video=VideoCacheConfig(cache_mb=N))`, N MiB below the set's video (default
  32 and 64), iterated as `DataLoader(windows.shuffled())`: every block decoded once per epoch, the
  next group decoding ahead in 2 threads; timed over a whole epoch, so all of its decoding counts;
- LeRobot: `LeRobotDataset(root=..., delta_timestamps=...)` (the same windows: checked value for value
  by scripts/check_lerobot.py) in `DataLoader(shuffle=True)`; timed over `--lerobot-windows` windows
  after one untimed batch (it decodes each window's frames from the mp4s with torchcodec).

Every measurement runs in a process of its own (this script with `--worker`; LeRobot's in
.venv-lerobot), so its peak RSS (VmHWM) is its own: `base` is its RSS after imports, `opened` once the
dataset and its windows are made (robo RAM: video decoded), `peak` the most it held, iterating
included. Configurations run one after another in one invocation; `--rounds R` repeats the sequence
and keeps each one's best. The machine may be shared: read the ratios; absolute numbers are
provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FPS = 10
TO, HORIZON, BATCH = 2, 16, 64
SIDE = 64
CAMERAS = ("observation.images.front", "observation.images.wrist")
LEROBOT_PYTHON = REPO / ".venv-lerobot" / "bin" / "python"


# ============================================================================ data sets
def _image(e: int, t: int, k: int, yy: np.ndarray, xx: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """A camera-like frame: gradient background, a moving lit disc, sensor noise."""
    cx = SIDE / 2 + SIDE / 3 * np.sin(0.15 * t + e + 2 * k)
    cy = SIDE / 2 + SIDE / 3 * np.cos(0.11 * t + 0.5 * e)
    disc = 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 6.0**2))
    base = np.stack([60 + xx, 40 + yy + 20 * k, 90 + 0.5 * (xx + yy)], -1) + disc[..., None]
    return np.clip(base + noise[(e * 7 + t + k) % len(noise)], 0, 255).astype(np.uint8)


def write_set(root: Path, n_episodes: int, length: int, cameras: bool) -> None:
    from robo.data import DatasetWriter
    from robo.spec import Feature, Spec

    feats = {"observation.state": Feature((9,))}
    if cameras:
        feats.update({k: Feature((SIDE, SIDE, 3), "uint8") for k in CAMERAS})
    feats["action"] = Feature((7,), low=(-1.0,) * 7, high=(1.0,) * 7)
    spec = Spec(feats)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 4, (16, SIDE, SIDE, 1))
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    with DatasetWriter(root, spec, fps=FPS, task="bench") as w:
        for e in range(n_episodes):
            for t in range(length):
                frame = {
                    "observation.state": np.sin(0.1 * t + np.arange(9) + e).astype(np.float32),
                    "action": np.cos(0.1 * t + np.arange(7) - e).astype(np.float32),
                    "action_source": "scripted",
                }
                if cameras:
                    frame.update({c: _image(e, t, k, yy, xx, noise) for k, c in enumerate(CAMERAS)})
                w.add_frame(frame)
            w.save_episode()


# ============================================================================ workers
def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _time_loader(loader, n_windows: int, *, warm_up: bool) -> tuple[int, float]:
    """(windows, seconds) over batches until `n_windows` (or the loader's end), after one untimed
    batch if `warm_up` (LeRobot's first-call set-up; robo's blocks count all of their decoding)."""
    it = iter(loader)
    if warm_up:
        next(it)
    seen, t0 = 0, time.perf_counter()
    for batch in it:
        seen += len(batch["action"])
        if seen >= n_windows:
            break
    return seen, time.perf_counter() - t0


def worker_robo(root: str, mode: str, cache_mb: float, n_windows: int) -> dict:
    import torch

    from robo.data import Dataset
    from robo.data.video_cache import VideoCacheConfig

    torch.set_num_threads(1)
    base = _rss_mb("VmRSS")
    t0 = time.perf_counter()
    ds = Dataset(root)
    cfg = VideoCacheConfig() if mode == "ram" else VideoCacheConfig(cache_mb=cache_mb)
    windows = ds.windows(TO, HORIZON, video=cfg)
    startup, opened = time.perf_counter() - t0, _rss_mb("VmRSS")
    if mode == "ram":
        assert windows.video is None, "expected the video in RAM"
        loader = torch.utils.data.DataLoader(windows, batch_size=BATCH, shuffle=True, num_workers=0)
    else:
        assert windows.video is not None, "expected blocks: cache_mb is above the set's video"
        loader = torch.utils.data.DataLoader(windows.shuffled(0), batch_size=BATCH, num_workers=0)
    seen, secs = _time_loader(loader, n_windows or len(windows), warm_up=False)
    out = {"startup_s": startup, "windows": seen, "seconds": secs, "base_mb": base, "open_mb": opened,
            "peak_mb": _rss_mb("VmHWM")}
    if windows.video is not None:
        cache = windows.video.cache()
        out["blocks_decoded"], out["blocks"] = cache.decoded, len(windows.video.episode)
    return out


def worker_lerobot(root: str, n_windows: int) -> dict:
    sys.path.insert(0, str(REPO / "scripts"))
    from lerobot_common import import_lerobot

    import_lerobot()
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    torch.set_num_threads(1)
    base = _rss_mb("VmRSS")
    t0 = time.perf_counter()
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    obs = [round((k - TO + 1) / FPS, 6) for k in range(TO)]
    delta = {"observation.state": obs, "action": [round((k - TO + 1) / FPS, 6) for k in range(HORIZON)]}
    delta.update({c: obs for c in CAMERAS if c in info["features"]})
    ds = LeRobotDataset("robo/bench", root=root, delta_timestamps=delta)
    startup, opened = time.perf_counter() - t0, _rss_mb("VmRSS")
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=0)
    seen, secs = _time_loader(loader, n_windows, warm_up=True)
    return {"startup_s": startup, "windows": seen, "seconds": secs, "base_mb": base, "open_mb": opened,
            "peak_mb": _rss_mb("VmHWM")}


def run_worker(python: Path | str, args: list[str]) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([str(python), __file__, "--worker", *args], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(lines[-1])


# ============================================================================ main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sets, few windows (smoke test)")
    p.add_argument("--data", default=None, help="folder for the generated sets (kept; reused when present)")
    p.add_argument("--budgets-mb", default="32,64", help="the two cache budgets of robo blocks, MiB")
    p.add_argument("--lerobot-python", default=str(LEROBOT_PYTHON), help="python of LeRobot's venv")
    p.add_argument("--lerobot-windows", type=int, default=1280, help="windows LeRobot is timed over")
    p.add_argument("--rounds", type=int, default=1, help="repeat every measurement, keep the best")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        kind, root, *rest = args.worker
        if kind == "robo":
            out = worker_robo(root, rest[0], float(rest[1]), int(rest[2]))
        else:
            out = worker_lerobot(root, int(rest[0]))
        print(json.dumps(out))
        return 0

    budgets = [float(b) for b in args.budgets_mb.split(",")]
    episodes = {"small": 50, "large": 200} if not args.quick else {"small": 8, "large": 24}
    length = 100 if not args.quick else 40
    if args.quick:
        budgets = [b / 16 for b in budgets]
        args.lerobot_windows = min(args.lerobot_windows, 192)
    lerobot = Path(args.lerobot_python).is_file()
    tmp = tempfile.TemporaryDirectory() if args.data is None else None
    data = Path(args.data or tmp.name)  # type: ignore[union-attr]
    sets = {}
    for name, n_ep in episodes.items():
        for cams in (False, True):
            root = data / f"{name}_{'cams' if cams else 'state'}_{n_ep}x{length}"
            if not (root / "meta" / "info.json").exists():
                t0 = time.perf_counter()
                write_set(root, n_ep, length, cams)
                print(f"wrote {root.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            video_mb = n_ep * length * len(CAMERAS) * SIDE * SIDE * 3 / 2**20 if cams else 0.0
            sets[root.name] = (root, video_mb)

    rows: dict[tuple[str, str], dict] = {}
    for _ in range(args.rounds):
        for set_name, (root, video_mb) in sets.items():
            configs = [("robo RAM", ["robo", str(root), "ram", "0", "0"], sys.executable)]
            if video_mb:
                configs += [(f"robo blocks@{b:g}MB", ["robo", str(root), "blocks", str(b), "0"], sys.executable)
                            for b in budgets]
            if lerobot:
                configs.append(("LeRobot", ["lerobot", str(root), str(args.lerobot_windows)], args.lerobot_python))
            for label, wargs, python in configs:
                r = run_worker(python, wargs)
                if "error" not in r:
                    r["windows_per_s"] = r["windows"] / r["seconds"]
                best = rows.get((set_name, label))
                if best is None or r.get("windows_per_s", 0) > best.get("windows_per_s", 0):
                    rows[(set_name, label)] = r
                print(f"  {set_name:24s} {label:20s} {_fmt(r)}", flush=True)

    print(f"\nTo={TO}, T={HORIZON}, batch {BATCH}, DataLoader num_workers 0; provisional (machine may be shared)")
    print("| set (decoded video) | loader | windows/s | x LeRobot | RSS MB: base / opened / peak | start-up s |")
    print("|---|---|---:|---:|---:|---:|")
    for set_name, (_, video_mb) in sets.items():
        ref = rows.get((set_name, "LeRobot"), {}).get("windows_per_s")
        for (s, label), r in rows.items():
            if s != set_name:
                continue
            if "error" in r:
                print(f"| {set_name} | {label} | error: {r['error'][:80]} | | | |")
                continue
            ratio = f"{r['windows_per_s'] / ref:.0f}x" if ref and label != "LeRobot" else ""
            vid = f" ({video_mb:.0f} MB)" if video_mb else ""
            print(f"| {set_name}{vid} | {label} | {r['windows_per_s']:,.0f} | {ratio} | "
                  f"{r['base_mb']:,.0f} / {r['open_mb']:,.0f} / {r['peak_mb']:,.0f} | {r['startup_s']:.1f} |")
    if not lerobot:
        print(f"(no LeRobot: {args.lerobot_python} missing; `bash scripts/lerobot_env.sh` makes it)")
    if tmp is not None:
        tmp.cleanup()
    return 0


def _fmt(r: dict) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    extra = f", {r['blocks_decoded']}/{r['blocks']} blocks decoded" if "blocks" in r else ""
    return (f"{r['windows_per_s']:8,.0f} windows/s over {r['windows']}, RSS MB base {r['base_mb']:,.0f} / "
            f"opened {r['open_mb']:,.0f} / peak {r['peak_mb']:,.0f}, start-up {r['startup_s']:.1f} s{extra}")


if __name__ == "__main__":
    sys.exit(main())
