"""`robo train bc --devices N`: N processes of the same command joined by torch.distributed.

robo launches the ranks itself (no torchrun needed; under torchrun, which sets the same variables, each
process is already a rank): `launch(argv, n)` starts `robo <argv>` N times with `RANK`, `LOCAL_RANK`,
`WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT` set, and returns the first non-zero exit code. In a rank,
`init_from_env()` joins the group: NCCL with one GPU per rank when CUDA has N devices, gloo on CPU
processes otherwise. robo.learn.bc then splits each global batch over the ranks (see its docstring).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

__all__ = ["init_from_env", "is_rank", "launch"]


def is_rank() -> bool:
    """True in a process started as one rank of a group (by `launch` or torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env() -> tuple[int, int, str]:
    """Join the process group the environment names; (rank, world size, backend). Sets this rank's
    CUDA device (LOCAL_RANK) under NCCL; torch uses `cpu` under gloo."""
    import torch
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    nccl = torch.cuda.is_available() and torch.cuda.device_count() > local and dist.is_nccl_available()
    backend = "nccl" if nccl else "gloo"
    if nccl:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return rank, world, backend


def device_for_rank(requested: str) -> str:
    """The torch device of this rank: `cuda:<LOCAL_RANK>` under NCCL, `cpu` under gloo."""
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_backend() == "nccl":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', os.environ['RANK']))}"
    return "cpu" if requested in ("auto", "cuda") else requested


def launch(argv: list[str], n: int, *, timeout_s: float | None = None) -> int:
    """Run `robo <argv>` as `n` ranks on this machine; the first non-zero exit code (all stopped then)."""
    if n < 1:
        raise ValueError(f"--devices {n} must be >= 1")
    from robo.runtime.launch import free_port

    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(n)}
    procs = [subprocess.Popen([sys.executable, "-m", "robo.cli", *argv],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(n)]
    end = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while any(p.poll() is None for p in procs):
            failed = [p for p in procs if p.poll() not in (None, 0)]
            if failed or (end is not None and time.monotonic() > end):
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                break
            time.sleep(0.2)
        for p in procs:
            p.wait(timeout=30)
        return next((p.returncode for p in procs if p.returncode != 0), 0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
