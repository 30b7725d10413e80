"""Starting the console from the session commands (`--console [host:port]` on robo collect / run /
intervene), attaching one to a running session (`robo console --attach <session>`), and the registry
of running sessions that makes attaching possible.

Every session command registers itself in `<runtime dir>/sessions/<name>.json` (pid, mode, the console's
URL once one serves) and removes the file when it ends. `robo console --attach <name>` asks a session
that serves no console yet to start one (a request file + SIGUSR1; the session's handler starts the
server on a thread of its own, so its control loop never waits for it) and prints the URL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from robo.console.hub import ConsoleHub

__all__ = ["add_console_argument", "console_session", "sessions_dir", "attach", "running_sessions"]

DEFAULT_BIND = "127.0.0.1:8765"


def add_console_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--console", nargs="?", const=DEFAULT_BIND, default=None, metavar="HOST:PORT",
                        help="serve the operator console (a web page: cameras, phase, counters, buttons) on "
                             f"HOST:PORT (default {DEFAULT_BIND}; port 0: any free port). Any non-loopback bind "
                             "needs the token printed at start")


def sessions_dir() -> Path:
    from robo.hal.lease import runtime_dir

    return runtime_dir() / "sessions"


def _token_help(server: Any) -> str:
    if server.token is None:
        return "localhost only"
    return "non-local bind: the token in this URL is required (requests without it get 403)"


def start_server(hub: ConsoleHub, bind: str, say: Callable[[str], None]) -> Any:
    """Serve `hub` on `bind` (host:port); says the URL (and token) and returns the ConsoleServer."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise RuntimeError("the console needs aiohttp: pip install 'robo[console]'") from None
    from robo.console.server import ConsoleServer, parse_bind

    host, port = parse_bind(bind)
    server = ConsoleServer(hub, host=host, port=port).start()
    say(f"console: {server.url} ({_token_help(server)})")
    return server


@contextlib.contextmanager
def console_session(hub: ConsoleHub, bind: str | None, say: Callable[[str], None]) -> Iterator[ConsoleHub]:
    """For the session's lifetime: register it (attachable), serve the console when `bind` is given,
    and stop serving when the session ends (a page then shows the connection lost)."""
    servers: list[Any] = []
    reg = _Registration(hub)
    lock = threading.Lock()

    def serve(where: str) -> None:
        with lock:
            if servers:
                return
            try:
                servers.append(start_server(hub, where, say))
            except Exception as e:  # noqa: BLE001 - a console that cannot start must not stop the session
                say(f"console: cannot start on {where}: {e}")
                return
        reg.write(url=servers[0].url)

    restore = _on_attach_request(reg, lambda where: threading.Thread(target=serve, args=(where,), daemon=True,
                                                                     name="robo-console-attach").start())
    if bind:
        serve(bind)
        if not servers:
            raise RuntimeError(f"--console {bind}: the console could not start")
    reg.write(url=servers[0].url if servers else None)
    try:
        yield hub
    finally:
        restore()
        reg.remove()
        for s in servers:
            s.stop()


class _Registration:
    def __init__(self, hub: ConsoleHub) -> None:
        self.hub = hub
        self.path = sessions_dir() / f"{hub.name}.json"
        self.request = self.path.with_suffix(".attach")

    def write(self, url: str | None) -> None:
        """Register (best effort: a registry that cannot be written only makes the session unattachable)."""
        from robo.data.atomic import atomic_write_json

        try:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(self.path.parent, 0o1777)  # shared by every user, like the leases beside it
            atomic_write_json(self.path, {"name": self.hub.name, "mode": self.hub.mode, "pid": os.getpid(),
                                          "url": url, "started": time.time()})
        except OSError:
            pass

    def remove(self) -> None:
        for p in (self.path, self.request):
            with contextlib.suppress(OSError):
                p.unlink()


def _on_attach_request(reg: _Registration, start: Callable[[str], None]) -> Callable[[], None]:
    """SIGUSR1 (sent by `robo console --attach`) starts the console where its request file says."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        return lambda: None
    old = signal.getsignal(signal.SIGUSR1)

    def handler(signum: int, frame: Any) -> None:
        try:
            where = json.loads(reg.request.read_text()).get("bind") or DEFAULT_BIND
        except (OSError, ValueError):
            where = DEFAULT_BIND
        start(where)

    signal.signal(signal.SIGUSR1, handler)
    return lambda: signal.signal(signal.SIGUSR1, old)


def running_sessions() -> list[dict[str, Any]]:
    """The registered sessions whose process is alive."""
    out = []
    for p in sorted(sessions_dir().glob("*.json")):
        try:
            rec = json.loads(p.read_text())
            os.kill(int(rec["pid"]), 0)
        except (OSError, ValueError, KeyError):
            continue
        out.append(rec)
    return out


def attach(name: str, bind: str | None = None, timeout_s: float = 15.0) -> str:
    """The console URL of the running session `name` (its name or pid), starting its console if needed."""
    found = [r for r in running_sessions() if name in (r["name"], str(r["pid"]))]
    if not found:
        names = ", ".join(f"{r['name']} (pid {r['pid']})" for r in running_sessions()) or "none"
        raise ValueError(f"--attach {name}: no running session of that name or pid (running: {names})")
    rec = found[0]
    if rec.get("url"):
        return str(rec["url"])
    path = sessions_dir() / f"{rec['name']}.json"
    path.with_suffix(".attach").write_text(json.dumps({"bind": bind or DEFAULT_BIND}))
    os.kill(int(rec["pid"]), signal.SIGUSR1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            url = json.loads(path.read_text()).get("url")
        except (OSError, ValueError):
            url = None
        if url:
            return str(url)
        time.sleep(0.1)
    raise RuntimeError(f"session {rec['name']} (pid {rec['pid']}) started no console within {timeout_s:g} s")
