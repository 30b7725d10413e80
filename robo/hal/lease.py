"""Leases: which process may command which device, across processes on one machine.

A job must hold a lease on an actuator to command it; cameras may be leased "shared" (read-only).

Mechanism (local backend). Each resource key has a lock file under the machine-wide runtime dir
(`$ROBO_RUNTIME_DIR`, else `/tmp/robo`; shared by all users, so two users cannot command one robot)
in `leases/`:

    <stem>.lock                  flock(LOCK_EX) = exclusive lease, flock(LOCK_SH) = shared lease
    <stem>.holders/<pid>-<n>.json  one record per holder (pid, command, since, mode, job), itself kept
                                   flock'ed by the holder for as long as it lives

The kernel drops flock locks when the holding process exits or dies (kill -9 included), so a dead
holder's lease expires by itself; its record is then unlocked and recognised as stale by the next
reader (and deleted). Records are written to a temp file, locked, then renamed into place, so a
visible record is always complete and locked. Forked children do not keep their parent's leases.

Leases are the hook where a scheduler places jobs onto robots: everything goes through `acquire`,
and `set_backend` swaps the local flock backend for a distributed one (e.g. Ray, later).
"""

from __future__ import annotations

import atexit
import fcntl
import getpass
import hashlib
import itertools
import json
import os
import re
import socket
import sys
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

Mode = Literal["exclusive", "shared"]


class LeaseError(RuntimeError):
    """A lease could not be taken (held by someone else) or is required and not held."""


def runtime_dir() -> Path:
    """Directory for robo's machine-wide runtime state (leases): $ROBO_RUNTIME_DIR or /tmp/robo."""
    env = os.environ.get("ROBO_RUNTIME_DIR")
    return Path(env) if env else Path("/tmp/robo")


def _shared_dir(path: Path) -> None:
    """Create `path` writable by every user (sticky, like /tmp) so leases work across users."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o1777)
    except OSError:
        pass


def _stem(key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")[:80]
    return f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def _command_line() -> str:
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
        parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    except OSError:
        parts = [sys.executable, *sys.argv]
    if parts and os.path.basename(parts[0]).startswith("python") and len(parts) > 1:
        parts = parts[1:]
    if parts:
        parts[0] = os.path.basename(parts[0])
    cmd = " ".join(parts)
    return cmd if len(cmd) <= 160 else cmd[:157] + "..."


@dataclass(frozen=True)
class Holder:
    """Who holds a lease."""

    key: str
    mode: str
    pid: int
    command: str
    since: float  # host time (s) the lease was taken
    host: str
    user: str
    job: str | None = None

    def describe(self) -> str:
        age = max(0.0, time.time() - self.since)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        job = f", job {self.job!r}" if self.job else ""
        return f"pid {self.pid} ({self.command!r}{job}) since {when} ({_fmt_age(age)} ago)"


def _fmt_age(s: float) -> str:
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}min"
    return f"{s / 3600:.1f}h"


class Lease:
    """A held lease. Release with `release()` (idempotent), `with lease:`, or by exiting."""

    def __init__(self, key: str, mode: Mode, holder: Holder, lock_fd: int, record_fd: int, record: Path) -> None:
        self.key = key
        self.mode = mode
        self.holder = holder
        self._lock_fd: int | None = lock_fd
        self._record_fd: int | None = record_fd
        self._record = record
        self._pid = os.getpid()
        _LIVE.add(self)

    @property
    def held(self) -> bool:
        return self._lock_fd is not None and self._pid == os.getpid()

    def release(self) -> None:
        if self._lock_fd is None:
            return
        if self._pid != os.getpid():  # a forked child: never unlock the parent's lease
            self._forget()
            return
        try:
            self._record.unlink(missing_ok=True)
        except OSError:
            pass
        self._forget()

    def _forget(self) -> None:
        for fd in (self._record_fd, self._lock_fd):
            if fd is not None:
                try:
                    os.close(fd)  # closing the last descriptor drops the flock
                except OSError:
                    pass
        self._record_fd = self._lock_fd = None
        _LIVE.discard(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<Lease {self.key!r} {self.mode} {'held' if self.held else 'released'}>"


_LIVE: weakref.WeakSet[Lease] = weakref.WeakSet()
_COUNTER = itertools.count()
_MUTEX = threading.Lock()


def _release_all_at_exit() -> None:
    for held in list(_LIVE):
        held.release()


def _forget_all_in_child() -> None:
    # A forked child shares its parent's open lock descriptions; closing our copies (without
    # LOCK_UN) keeps the parent's lease intact and lets it expire when the parent dies.
    for held in list(_LIVE):
        held._forget()


atexit.register(_release_all_at_exit)
os.register_at_fork(after_in_child=_forget_all_in_child)


class LeaseBackend(Protocol):
    """What a lease provider implements (local flock today; a cluster scheduler later)."""

    def acquire(self, key: str, mode: Mode, *, timeout: float, job: str | None) -> Lease: ...

    def holders(self, key: str) -> list[Holder]: ...

    def list(self) -> dict[str, list[Holder]]: ...


class LocalLeases:
    """flock-based leases for processes on this machine (see module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return (self._root or runtime_dir()) / "leases"

    def acquire(self, key: str, mode: Mode = "exclusive", *, timeout: float = 0.0, job: str | None = None) -> Lease:
        if mode not in ("exclusive", "shared"):
            raise ValueError(f"lease mode={mode!r} must be 'exclusive' or 'shared'")
        root = self.root
        _shared_dir(root.parent)
        _shared_dir(root)
        stem = _stem(key)
        # read-only is enough for flock, and lets users other than the file's creator lock it
        fd = os.open(root / f"{stem}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        op = fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LeaseError(self._busy_message(key, mode)) from None
                time.sleep(0.05)
        try:
            holder, rfd, record = self._write_record(key, mode, stem, job)
        except BaseException:
            os.close(fd)
            raise
        return Lease(key, mode, holder, fd, rfd, record)

    def _write_record(self, key: str, mode: Mode, stem: str, job: str | None) -> tuple[Holder, int, Path]:
        holders_dir = self.root / f"{stem}.holders"
        _shared_dir(holders_dir)
        holder = Holder(
            key=key, mode=mode, pid=os.getpid(), command=_command_line(), since=time.time(),
            host=socket.gethostname(), user=_user(), job=job,
        )
        with _MUTEX:
            n = next(_COUNTER)
        final = holders_dir / f"{os.getpid()}-{n}.json"
        tmp = holders_dir / f".{os.getpid()}-{n}.tmp"
        rfd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(rfd, json.dumps(asdict(holder)).encode())
            fcntl.flock(rfd, fcntl.LOCK_EX)
            os.rename(tmp, final)
        except BaseException:
            os.close(rfd)
            tmp.unlink(missing_ok=True)
            raise
        return holder, rfd, final

    def holders(self, key: str) -> list[Holder]:
        return self._read_holders(self.root / f"{_stem(key)}.holders")

    def _read_holders(self, holders_dir: Path) -> list[Holder]:
        out: list[Holder] = []
        try:
            records = sorted(holders_dir.glob("*.json"))
        except OSError:
            return out
        for rec in records:
            try:
                fd = os.open(rec, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # locked: the holder is alive
                    data = os.read(fd, 65536)
                    try:
                        out.append(Holder(**json.loads(data)))
                    except (ValueError, TypeError):
                        pass
                else:  # unlocked: the holder is gone (exited or killed); drop its record
                    try:
                        rec.unlink(missing_ok=True)
                    except OSError:  # another user's record in the sticky dir: just skip it
                        pass
            finally:
                os.close(fd)
        return sorted(out, key=lambda h: h.since)

    def list(self) -> dict[str, list[Holder]]:
        out: dict[str, list[Holder]] = {}
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.glob("*.holders")):
            hs = self._read_holders(d)
            if hs:
                out[hs[0].key] = hs
        return out

    def _busy_message(self, key: str, mode: Mode) -> str:
        holders: list[Holder] = []
        for _ in range(10):  # a new holder may not have written its record yet
            holders = self.holders(key)
            if holders:
                break
            time.sleep(0.02)
        want = "an exclusive" if mode == "exclusive" else "a shared"
        if not holders:
            return f"resource '{key}' is leased by another process (holder unknown); cannot take {want} lease"
        desc = "; ".join(f"{h.mode} by {h.describe()}" for h in holders)
        return f"resource '{key}' is already leased ({desc}); cannot take {want} lease — stop that job or wait"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


_BACKEND: LeaseBackend = LocalLeases()


def set_backend(backend: LeaseBackend) -> LeaseBackend:
    """Install a lease backend (returns the previous one)."""
    global _BACKEND
    prev, _BACKEND = _BACKEND, backend
    return prev


def get_backend() -> LeaseBackend:
    return _BACKEND


def acquire(key: str, mode: Mode = "exclusive", *, timeout: float = 0.0, job: str | None = None) -> Lease:
    """Take a lease on `key`, waiting up to `timeout` s. Raises LeaseError naming the holder(s)."""
    return _BACKEND.acquire(key, mode, timeout=timeout, job=job)


def holders(key: str) -> list[Holder]:
    """Live holders of `key` (empty when free)."""
    return _BACKEND.holders(key)


def list_leases() -> dict[str, list[Holder]]:
    """Every currently held lease on this machine: key -> holders."""
    return _BACKEND.list()
