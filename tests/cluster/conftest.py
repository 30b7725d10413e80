"""A two-node Ray cluster on loopback, started once for tests/cluster: a head and one more node, each
joined with `robo cluster join --cell` and advertising its own simulated robot (cells `rayA`, `rayB`).

The nodes run `ray start --block` under `robo cluster join` in their own sessions with a private
`--temp-dir`; teardown ends those sessions, then any process whose command line names that temp dir
(Ray's daemons), by pid, even when a test failed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_helpers import CELLS, cluster_status, write_cell  # noqa: E402


def _uses(pid_dir: Path, marker: str) -> bool:
    """True when the process names `marker` in its command line or holds a file under it open (Ray's
    agents rename themselves `ray::...` but keep their session's logs open)."""
    if marker in (pid_dir / "cmdline").read_bytes().decode(errors="replace"):
        return True
    for fd in (pid_dir / "fd").iterdir():
        try:
            if os.readlink(fd).startswith(marker):
                return True
        except OSError:
            continue
    return False


def _kill_named(marker: str) -> None:
    """SIGKILL every process of ours that uses `marker` (this cluster's temp dir), by pid."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            if _uses(pid_dir, marker):
                os.kill(int(pid_dir.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """{"address", "cells": {name: path}, "runtime", "nodes": {cell: node_id}}."""
    import ray  # noqa: F401 - the dev extra installs it; a missing ray fails here, never skips

    from robo.runtime.launch import free_port

    root = tmp_path_factory.mktemp("cluster")
    runtime = root / "runtime"
    os.environ["ROBO_RUNTIME_DIR"] = str(runtime)  # the nodes' actors and this process see the same leases
    # a loopback cluster of this test session: no token auth (Ray turns it on whenever ~/.ray/auth_token
    # exists, e.g. after any local ray.init(); the nodes and clients here must not depend on that file)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = tempfile.mkdtemp(prefix="rr", dir="/tmp")  # short: Ray's unix sockets live under it
    cells = {name: write_cell(root / f"{name}.yaml", name) for name in CELLS}
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_enable_worker_prestart": "0"}
    common = ["--node-ip", "127.0.0.1", "--ray-arg=--block", f"--ray-arg=--temp-dir={temp}",
              "--ray-arg=--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    logs = [open(root / f"{name}.log", "w") for name in CELLS]  # noqa: SIM115 - closed below
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "robo.cli", "cluster", "join", "--cell", str(cells["rayA"]), "--port", str(port),
             "--num-cpus", "4", *common], env=env, stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True))
        nodes: dict[str, str] = {}
        deadline = time.monotonic() + 120
        started_b = False
        last_error = ""
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a ray node exited: " + (root / "rayA.log").read_text()[-2000:]
                                   + (root / "rayB.log").read_text()[-2000:])
            try:
                rows = cluster_status(address)
            except AssertionError as e:  # not up yet
                last_error = str(e)
                time.sleep(1.0)
                continue
            nodes = {r["cell"]: r["node_id"] for r in rows if r["cell"]}
            if not started_b and "rayA" in nodes:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "robo.cli", "cluster", "join", "--cell", str(cells["rayB"]),
                     "--address", address, "--num-cpus", "3", *common], env=env, stdout=logs[1],
                    stderr=subprocess.STDOUT, start_new_session=True))
                started_b = True
            if set(CELLS) <= nodes.keys():
                break
            time.sleep(1.0)
        else:
            raise RuntimeError(f"the two-node cluster did not come up in 120 s (nodes {nodes}; status: {last_error})")
        yield {"address": address, "cells": cells, "runtime": runtime, "nodes": nodes, "temp": temp}
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)  # the session we started: robo cluster join + ray start --block
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        _kill_named(temp)
        for f in logs:
            f.close()
        shutil.rmtree(temp, ignore_errors=True)
