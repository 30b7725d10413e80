"""Key presses from a plain terminal (no X server): raw bytes from a file descriptor -> key names.

    keys = TerminalKeys.stdin()        # shared reader of this process's terminal (cbreak mode)
    q = keys.subscribe()               # every subscriber gets every key: (name, host time)

Any readable fd works (a pipe in tests). When the fd is a TTY it is put in cbreak mode (no echo,
no line buffering; Ctrl-C still interrupts) and restored on `stop()` and at exit. A terminal only
reports key presses (plus auto-repeat while a key is held), never releases; devices built on it
treat a key as held for a short window after its last press.
"""

from __future__ import annotations

import atexit
import os
import queue
import select
import sys
import termios
import threading
import tty

from robo.hal.resource import now

_ESCAPES = {
    b"\x1b[A": "up", b"\x1b[B": "down", b"\x1b[C": "right", b"\x1b[D": "left",
    b"\x1bOA": "up", b"\x1bOB": "down", b"\x1bOC": "right", b"\x1bOD": "left",
    b"\x1b[5~": "pageup", b"\x1b[6~": "pagedown", b"\x1b[H": "home", b"\x1b[F": "end",
}
_SINGLE = {b"\r": "enter", b"\n": "enter", b" ": "space", b"\t": "tab", b"\x7f": "backspace", b"\x08": "backspace"}


def parse_keys(data: bytes) -> list[str]:
    """Split a chunk of terminal bytes into key names ("a", "enter", "up", "esc", ...)."""
    out: list[str] = []
    i = 0
    while i < len(data):
        if data[i:i + 1] == b"\x1b":
            for seq, name in _ESCAPES.items():
                if data.startswith(seq, i):
                    out.append(name)
                    i += len(seq)
                    break
            else:
                out.append("esc")
                i += 1
            continue
        ch = data[i:i + 1]
        if ch in _SINGLE:
            out.append(_SINGLE[ch])
        elif 32 < ch[0] < 127:
            out.append(ch.decode())
        i += 1
    return out


class TerminalKeys:
    """A thread reading key presses from `fd` and fanning them out to subscribers."""

    _stdin: TerminalKeys | None = None

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self._subs: list[queue.SimpleQueue[tuple[str, float]]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._saved: list | None = None
        self.n_keys = 0

    @classmethod
    def stdin(cls) -> TerminalKeys:
        """The process-wide reader of stdin (no input when stdin is not a terminal or pipe)."""
        if cls._stdin is None:
            try:
                fd: int | None = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):
                fd = None
            cls._stdin = cls(fd)
        return cls._stdin

    @property
    def is_tty(self) -> bool:
        return self.fd is not None and os.isatty(self.fd)

    def subscribe(self) -> queue.SimpleQueue[tuple[str, float]]:
        q: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        with self._lock:
            self._subs.append(q)
        self.start()
        return q

    def unsubscribe(self, q: queue.SimpleQueue) -> None:
        with self._lock:
            if q in self._subs:
                self._subs.remove(q)

    def start(self) -> None:
        if self._thread is not None or self.fd is None:
            return
        if self.is_tty:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
            atexit.register(self._restore)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="terminal-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.fd is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.fd, 256)
            except (OSError, ValueError):
                return
            if not data:  # EOF (a closed pipe)
                return
            t = now()
            keys = parse_keys(data)
            with self._lock:
                subs = list(self._subs)
            for k in keys:
                self.n_keys += 1
                for q in subs:
                    q.put((k, t))

    def inject(self, key: str) -> None:
        """Deliver a key name as if typed (scripts and tests; bytes through the fd are the usual way)."""
        t = now()
        with self._lock:
            subs = list(self._subs)
        for q in subs:
            q.put((key, t))

    def _restore(self) -> None:
        if self._saved is not None and self.fd is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass
            self._saved = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        self._restore()
