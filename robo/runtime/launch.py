"""Start a learner process and N actor processes on this machine (`robo train --residual --actors N`).

The processes are the ordinary `robo learner` and `robo actor` commands on loopback, so this path is
the cloud/edge one with the network folded onto one host. The learner writes the run's report; the
actors take their config from the learner.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["free_port", "launch_local"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (for local launches and tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def launch_local(
    algo: str,
    config_path: str | os.PathLike | None,
    n_actors: int,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    overrides: list[str] | None = None,
    timeout_s: float | None = None,
    log_level: str = "WARNING",
    start_timeout_s: float = 300.0,
    learner_args: list[str] | None = None,
    actor_args: list[str] | None = None,
) -> int:
    """One learner and `n_actors` actor processes; returns the learner's exit code.

    `config_path` (YAML, or None for the algorithm's defaults) and `overrides` (`key=value`) make the
    learner's config as in `robo learner`; the actors ask the learner for its resolved config.
    `learner_args` / `actor_args` are extra command-line flags (e.g. `--cell <yaml>`: the actors act on a cell). A
    learner that fails before it serves leaves no run folder behind (unless resuming)."""
    if n_actors < 1:
        raise ValueError(f"n_actors={n_actors} must be >= 1")
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    rpc, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    ready = run_dir.parent / f".{run_dir.name}.endpoints.json"
    ready.parent.mkdir(parents=True, exist_ok=True)
    ready.unlink(missing_ok=True)
    cli = [sys.executable, "-m", "robo.cli"]
    learner_cmd = cli + ["learner", "--algo", algo, "--run-dir", str(run_dir), "--bind", rpc, "--pub", pub,
                         "--ready-file", str(ready), "--log-level", log_level]
    learner_cmd += (["--config", str(config_path)] if config_path else []) + (["--resume"] if resume else [])
    learner_cmd += list(learner_args or []) + list(overrides or [])
    procs: list[subprocess.Popen] = []
    learner = subprocess.Popen(learner_cmd)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not ready.exists():
            if learner.poll() is not None:
                if created and learner.returncode != 0:
                    shutil.rmtree(run_dir, ignore_errors=True)
                return int(learner.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError(f"learner did not start within {start_timeout_s:.0f} s")
            time.sleep(0.05)
        for i in range(n_actors):
            cmd = cli + ["actor", "--algo", algo, "--learner", rpc, "--weights", pub, "--actor-id", str(i),
                         "--log-level", log_level, *(actor_args or [])]
            procs.append(subprocess.Popen(cmd))
        print(f"robo: learner pid {learner.pid} + {n_actors} actor(s) {[p.pid for p in procs]}; run dir {run_dir}",
              flush=True)
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while learner.poll() is None:
            if all(p.poll() is not None for p in procs) and any(p.returncode != 0 for p in procs):
                codes = [p.returncode for p in procs]
                print(f"robo: all actors exited (codes {codes}) before the learner finished; stopping it", flush=True)
                learner.terminate()
                learner.wait(60)
                return 1
            if end is not None and time.monotonic() > end:
                learner.terminate()
                learner.wait(60)
                return 124
            time.sleep(0.2)
        return int(learner.returncode)
    finally:
        ready.unlink(missing_ok=True)
        for p in procs:
            try:
                p.wait(timeout=10)  # actors stop on the learner's stop message
            except subprocess.TimeoutExpired:
                p.terminate()
        for p in [learner, *procs]:
            if p.poll() is None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
