"""Leases across processes: exclusivity, shared mode, expiry after kill -9, release on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robo.hal import lease

HOLDER = Path(__file__).with_name("lease_holder.py")


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBO_RUNTIME_DIR", str(tmp_path))
    return tmp_path


class Holder:
    """A separate Python process holding a lease until told to stop or killed."""

    def __init__(self, key: str, mode: str = "exclusive", *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HOLDER), key, mode, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"holder failed to start: {line!r} {self.proc.stderr.read()}")
        _, pid, child = line.split()
        self.pid, self.child = int(pid), int(child)

    def stop(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(timeout=10)

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.child:
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def holders():
    made: list[Holder] = []

    def start(*args: str) -> Holder:
        h = Holder(*args)
        made.append(h)
        return h

    yield start
    for h in made:
        h.cleanup()


def test_exclusive_across_processes_names_the_holder(holders):
    h = holders("franka:172.16.0.2", "exclusive", "--job", "collect-peg")
    with pytest.raises(lease.LeaseError) as e:
        lease.acquire("franka:172.16.0.2", "exclusive")
    msg = str(e.value)
    assert f"pid {h.pid}" in msg
    assert "lease_holder.py" in msg  # the holder's command line
    assert "collect-peg" in msg
    assert "since " in msg and "ago" in msg
    # a shared request is refused too
    with pytest.raises(lease.LeaseError):
        lease.acquire("franka:172.16.0.2", "shared")
    # the holder is listed
    listed = lease.list_leases()
    assert [x.pid for x in listed["franka:172.16.0.2"]] == [h.pid]
    # after a clean release the arm is free
    h.stop()
    got = lease.acquire("franka:172.16.0.2", "exclusive")
    assert got.held
    got.release()
    assert lease.holders("franka:172.16.0.2") == []


def test_lease_expires_when_holder_is_killed_with_sigkill(holders, runtime_dir):
    h = holders("sim:arm")
    with pytest.raises(lease.LeaseError):
        lease.acquire("sim:arm")
    assert [x.pid for x in lease.holders("sim:arm")] == [h.pid]
    h.kill9()
    got = lease.acquire("sim:arm", timeout=2.0)
    assert got.held and got.holder.pid == os.getpid()
    # the dead holder's record was recognised as stale and removed
    assert [x.pid for x in lease.holders("sim:arm")] == [os.getpid()]
    records = list((runtime_dir / "leases").glob("*.holders/*.json"))
    assert len(records) == 1
    got.release()


def test_forked_child_does_not_keep_the_parents_lease(holders):
    h = holders("sim:arm", "exclusive", "--fork")
    assert h.child > 0
    h.kill9()  # the parent dies; its forked child is still alive
    os.kill(h.child, 0)  # raises if the child were gone
    got = lease.acquire("sim:arm", timeout=2.0)
    assert got.held
    got.release()


def test_shared_leases_coexist_and_block_exclusive(holders):
    h1 = holders("realsense:123", "shared")
    h2 = holders("realsense:123", "shared")
    mine = lease.acquire("realsense:123", "shared")
    assert {x.pid for x in lease.holders("realsense:123")} == {h1.pid, h2.pid, os.getpid()}
    with pytest.raises(lease.LeaseError) as e:
        lease.acquire("realsense:123", "exclusive")
    assert f"pid {h1.pid}" in str(e.value) and f"pid {h2.pid}" in str(e.value)
    mine.release()
    h1.stop()
    h2.kill9()
    got = lease.acquire("realsense:123", "exclusive", timeout=2.0)
    assert got.held
    got.release()


def test_released_on_normal_exit(runtime_dir):
    code = "from robo.hal import lease; l = lease.acquire('sim:arm'); print('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )
    assert out.stdout.strip() == "ok", out.stderr
    # atexit removed the holder record and the kernel dropped the lock
    assert list((runtime_dir / "leases").glob("*.holders/*.json")) == []
    got = lease.acquire("sim:arm")
    assert got.held
    got.release()


def test_timeout_waits_for_release(holders):
    h = holders("sim:arm")
    t0 = time.monotonic()
    with pytest.raises(lease.LeaseError):
        lease.acquire("sim:arm", timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    h.stop()
    assert lease.acquire("sim:arm", timeout=1.0).held


def test_exclusive_within_one_process_and_idempotent_release():
    a = lease.acquire("sim:arm")
    with pytest.raises(lease.LeaseError) as e:
        lease.acquire("sim:arm")
    assert f"pid {os.getpid()}" in str(e.value)
    a.release()
    a.release()
    assert not a.held
    with lease.acquire("sim:arm") as b:
        assert b.held
    assert not b.held


def test_bad_mode_rejected():
    with pytest.raises(ValueError, match="mode"):
        lease.acquire("x", "readwrite")  # type: ignore[arg-type]
