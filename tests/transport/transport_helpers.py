"""Helpers for transport tests: free ports, an echo server process, process control with timeouts."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# reply kind for each request kind the echo server answers
REPLY = {
    "obs": "obs",
    "act_request": "act",
    "act": "act",
    "transitions": "ack",
    "ack": "ack",
    "weights": "weights",
    "weights_request": "weights",
    "config_request": "config",
    "config": "config",
    "heartbeat": "heartbeat",
    "error": "error",
}


def huge_jpeg(h: int = 16000, w: int = 16000) -> bytes:
    """A small valid JPEG whose frame header is rewritten to declare h x w (issue 22's 732-byte bomb)."""
    import numpy as np

    from robo.transport.codec import jpeg_encode

    data = bytearray(jpeg_encode(np.full((16, 16, 3), 128, np.uint8), 50))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = bytes([h >> 8, h & 0xFF, w >> 8, w & 0xFF])
    return bytes(data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def spawn(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "runtime"), str(REPO)])}
    env.update(kw.pop("env", {}))
    return subprocess.Popen([sys.executable, *args], env=env, cwd=str(REPO), **kw)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def echo_main() -> None:
    """`python transport_helpers.py --bind tcp://127.0.0.1:PORT [--curve-secret F --curve-allow D]`."""
    from robo.transport import CurveConfig, RpcServer

    p = argparse.ArgumentParser()
    p.add_argument("--bind", required=True)
    p.add_argument("--ready", type=Path)
    p.add_argument("--curve-secret")
    p.add_argument("--curve-allow")
    a = p.parse_args()
    curve = CurveConfig(a.curve_secret, allow_dir=a.curve_allow) if a.curve_secret else None
    srv = RpcServer(a.bind, name=f"echo-{os.getpid()}", curve=curve, info={"pid": os.getpid()})
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    if a.ready:
        a.ready.write_text(srv.endpoint)
    while running[0]:
        req = srv.recv(0.1)
        if req is not None:
            meta = {**req.msg.meta, "pid": os.getpid()}
            srv.reply(req, REPLY[req.msg.kind], req.msg.arrays, meta)
    srv.close()


if __name__ == "__main__":
    echo_main()
