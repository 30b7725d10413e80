"""Shared spine for learners: seeding, devices, confidence intervals, logging and progress.

Algorithms import these instead of re-implementing them (STYLE rule 1).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_threads() -> int:
    """torch threads for a training process: half the usable cores (at least 1, at most 8), so two
    robo jobs (a trainer and an evaluation, a learner and an actor) never oversubscribe a machine;
    on a 2-core machine that is 1 thread, ~30x faster than torch's default beside another job."""
    return max(1, min(8, usable_cores() // 2))


def configure_threads(n: int) -> int:
    """Set torch's intra-op threads: `n` > 0 as given, 0 = `auto_threads()`. Returns the number set."""
    n = n if n > 0 else auto_threads()
    torch.set_num_threads(n)
    return n


def pick_device(name: str = "auto") -> torch.device:
    """`auto` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (well-behaved at 0% and 100%).

    Always contains the observed rate: at 0% / 100% the float edges can otherwise fall a hair inside it.
    """
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


class Logger:
    """TensorBoard scalars plus a CSV of every logged scalar (plots are made from the CSV)."""

    def __init__(self, run_dir: str | Path, use_tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tb"))
            except Exception as e:  # tensorboard missing or broken: keep the CSV log
                print(f"robo: TensorBoard disabled ({e})", file=sys.stderr)
        self._csv = open(self.run_dir / "scalars.csv", "a")  # noqa: SIM115 - closed in close()
        if self._csv.tell() == 0:
            self._csv.write("step,tag,value\n")

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            value = float(value)
            if self._tb is not None:
                self._tb.add_scalar(tag, value, step)
            self._csv.write(f"{step},{tag},{value:.6g}\n")
        self._csv.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        self._csv.close()


class ProgressLine:
    """One status line rewritten in place (TTY) or printed every `every_s` seconds (logs, CI)."""

    def __init__(self, total: int, desc: str, every_s: float = 10.0, stream=None, start: int = 0):
        self.total = total
        self.start = start  # progress already made before this run (a resume): the ETA counts from here
        self.desc = desc
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() and os.environ.get("CI") is None
        self.every_s = 0.5 if self.tty else every_s
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, done: int, fields: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        elapsed = now - self.t0
        frac = done / max(1, self.total)
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        # no ETA from the first 1%: a first step that also builds caches would promise hours
        early = done - self.start < 0.01 * max(1, self.total - self.start)
        eta = max(0.0, self.total - done) / rate if rate > 0 and not early else float("nan")
        parts = [f"{self.desc} {done}/{self.total} ({100 * frac:3.0f}%)"]
        parts += [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()]
        parts.append(f"{elapsed:.0f}s elapsed, eta {eta:.0f}s" if math.isfinite(eta) else f"{elapsed:.0f}s")
        line = " | ".join(parts)
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def load_torch(path: Path) -> Any:
    """torch.load of a robo-written file, with a one-line error naming the file when it is damaged."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - zip/pickle errors of a truncated or foreign file
        why = " ".join(str(e).split())[:200]
        raise ValueError(f"{path}: unreadable checkpoint ({type(e).__name__}: {why})") from None


class StopSignal:
    """SIGINT/SIGTERM -> a flag the loop checks between steps (a second Ctrl-C interrupts at once)."""

    def __init__(self) -> None:
        import signal
        import threading

        self.set = False
        self._old: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        print("\nrobo: stopping after this step (checkpoint first)...", flush=True)

    def restore(self) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
