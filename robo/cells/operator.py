"""The operator of a cell: a person at the terminal (or a script standing in for one).

Events, each a word, come from terminal keys (robo.teleop.terminal) or `push()`:

    key         event     effect (robo.cells.env.CellEnv)
    g, enter    go        start the episode after the reset (real cells wait for it)
    y           success   end the episode as a success (reward 1)
    n           failure   end the episode as a failure
    p, space    pause     the controller holds; the same key again resumes (rearm)
    r           resume    leave a pause
    q, esc      stop      hold, end the episode, stop the run (OperatorStop)

Every subscriber sees every key, so the operator and a teleop keyboard can share one terminal.
"""

from __future__ import annotations

import queue
import threading
import time

from robo.teleop.terminal import TerminalKeys

KEY_EVENTS = {"g": "go", "enter": "go", "y": "success", "n": "failure", "p": "pause", "space": "pause",
              "r": "resume", "q": "stop", "esc": "stop"}
EVENTS = ("go", "success", "failure", "pause", "resume", "stop")
GO_KEYS = {"g": "go", "enter": "go"}  # only "go": the rest belongs to a human-in-the-loop session
KEYS_HELP = "keys: g go | y success | n failure | p pause/resume | q stop"


class OperatorStop(KeyboardInterrupt):
    """The operator asked to stop; raised after the controller holds (a KeyboardInterrupt: runs end as on Ctrl-C)."""


class Operator:
    """Where operator events come from: a terminal (`keys`) and/or `push()`. Every `listen()`-er (one
    per CellEnv: several sim copies may share an operator) gets every event. Thread-safe."""

    def __init__(self, keys: TerminalKeys | None = None, *, keymap: dict[str, str] | None = None) -> None:
        """`keymap`: which terminal keys mean which event (default KEY_EVENTS); a session that owns some
        keys itself (robo.hil: pause, marks) passes the rest, e.g. GO_KEYS."""
        self.keys = keys
        self.keymap = dict(KEY_EVENTS if keymap is None else keymap)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def listen(self) -> Listener:
        """A new stream of this operator's events (from now on)."""
        listener = Listener(self)
        with self._lock:
            self._listeners.append(listener)
        return listener

    def push(self, event: str) -> None:
        """Deliver an event as if its key was pressed (scripts, tests; the web console presses the session's keys)."""
        if event not in EVENTS:
            raise ValueError(f"operator event {event!r} is not one of {EVENTS}")
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.pushed.put(event)

    def _forget(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)


class Listener:
    """One consumer's stream of operator events (`Operator.listen()`)."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        self.pushed: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._keys = operator.keys.subscribe() if operator.keys is not None else None
        self.n_events = 0

    def poll(self) -> list[str]:
        """Events since the last call, oldest first (never blocks)."""
        out: list[str] = []
        while True:
            try:
                out.append(self.pushed.get_nowait())
            except queue.Empty:
                break
        if self._keys is not None:
            while True:
                try:
                    key, _ = self._keys.get_nowait()
                except queue.Empty:
                    break
                if key in self.operator.keymap:
                    out.append(self.operator.keymap[key])
        self.n_events += len(out)
        return out

    def wait_for(self, wanted: tuple[str, ...], timeout_s: float | None = None, poll_s: float = 0.02) -> str | None:
        """Block until one of `wanted` (or "stop") arrives; returns it, or None after `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            for event in self.poll():
                if event in wanted or event == "stop":
                    return event
            time.sleep(poll_s)
        return None

    def close(self) -> None:
        if self._keys is not None and self.operator.keys is not None:
            self.operator.keys.unsubscribe(self._keys)
            self._keys = None
        self.operator._forget(self)
