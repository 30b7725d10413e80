"""The session side of the operator console: one small publisher the session loops call, and the
event path back into the session.

    hub = ConsoleHub("intervene", keys=keys, controls=INTERVENE_CONTROLS)   # always cheap to have
    hub.publish({"phase": "recovery", "episode": 2, ...}, images, t_capture=t_obs)   # each control period
    hub.note("episode 1: success")                                               # a status line
    hub.health_fn = lambda: cell_health(env)      # polled by the console's thread, never by the loop

`publish()` never blocks and never queues: it swaps references into a latest-only slot under a lock
(no copy, no encoding: JPEG encoding happens on the console's thread, which drops whatever frames a
slow page cannot take). While no console serves the hub (`hub.server is None`), it returns at once.
The arrays handed to `publish()` must not be modified afterwards (the loops publish fresh observations).

Events from the page become key presses of the session's own terminal reader (`TerminalKeys.inject`),
so buttons, page shortcuts and the terminal feed one event queue and work at once; a button is one of
`controls` (label, key, event), and a key outside them is refused. A stop from the page is the
terminal's `q`: the same path, ending in the controller's hold. (Not `robo.cells.operator.Operator.push`:
that reaches only a cell's own listeners (go, marks, pause, stop), while the human-in-the-loop operator
and the collect loop read the terminal's keys; the key reader is the one queue all three sessions read.)
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["Control", "ConsoleHub", "Publisher", "NullPublisher", "period", "INTERVENE_CONTROLS", "RUN_CONTROLS",
           "COLLECT_CONTROLS", "cell_health"]


@dataclass(frozen=True)
class Control:
    """One button of the page: `label`, the terminal `key` it presses, the session `event` it means."""

    label: str
    key: str
    event: str
    shortcut: str = ""  # the page's keyboard shortcut (default: the key itself)

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "key": self.key, "event": self.event, "shortcut": self.shortcut or self.key}


# the sessions' keys (robo.hil.operators.SESSION_KEYS, robo.cells.operator.KEY_EVENTS, robo.teleop.session)
INTERVENE_CONTROLS = (Control("start", "g", "go"), Control("pause / resume", "p", "pause"),
                      Control("take over", "t", "takeover"), Control("recovery → correction", "c", "correct"),
                      Control("hand back", "h", "handback"), Control("success", "y", "success"),
                      Control("failure", "n", "failure"), Control("stop", "q", "quit"))
RUN_CONTROLS = (Control("start", "g", "go"), Control("pause / resume", "p", "pause"),
                Control("success", "y", "success"), Control("failure", "n", "failure"),
                Control("stop", "q", "stop"))
COLLECT_CONTROLS = (Control("finish", "enter", "finish", "Enter"), Control("success", "y", "success"),
                    Control("failure", "n", "failure"), Control("re-record", "x", "rerecord"),
                    Control("stop", "q", "quit"))


class Publisher(Protocol):
    """What a session loop calls (see the module docstring). `active` False: everything is dropped, so a
    loop may skip building the state at all."""

    @property
    def active(self) -> bool: ...

    def publish(self, state: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None, *,
                t_capture: float | None = None) -> None: ...

    def note(self, text: str) -> None: ...


class NullPublisher:
    """A publisher that drops everything (the loops' default)."""

    active = False

    def publish(self, state: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None, *,
                t_capture: float | None = None) -> None:
        return None

    def note(self, text: str) -> None:
        return None


class ConsoleHub:
    """Latest state and camera frames of one session, its recent history, and the way back (keys)."""

    def __init__(self, mode: str, *, keys: Any = None, controls: Sequence[Control] = (), name: str = "",
                 history: int = 150) -> None:
        """`mode`: intervene | run | collect; `keys`: the session's TerminalKeys (events are injected there);
        `history`: how many recent state/action samples a (re)connecting page gets."""
        self.mode = mode
        self.name = name or mode
        self.keys = keys
        self.controls = tuple(controls)
        self.health_fn: Callable[[], dict[str, Any]] | None = None
        self.server: Any = None  # the ConsoleServer serving this hub, once started
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"mode": mode}
        self._images: Mapping[str, np.ndarray] = {}
        self._t_capture = 0.0
        self.seq = 0  # count of publish() calls that carried images
        self.state_seq = 0
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)
        self._notes: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self.n_events = 0
        self.events: collections.deque[tuple[float, str]] = collections.deque(maxlen=200)  # (time, key) pressed

    # ------------------------------------------------------------------ the session's side
    @property
    def active(self) -> bool:
        """True while a console serves this hub (else publish() and note() drop everything)."""
        return self.server is not None

    def publish(self, state: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None, *,
                t_capture: float | None = None) -> None:
        """The session's state now (merged into the last) and, optionally, its camera frames captured at
        host time `t_capture` (s, robo.hal.resource.now). Never blocks; nothing is copied or encoded."""
        if self.server is None:
            return
        t = time.time()
        with self._lock:
            self._state.update(state)
            self._state["t"] = t
            self.state_seq += 1
            if images:
                self._images = images
                self._t_capture = t if t_capture is None else float(t_capture)
                self.seq += 1
            if "state" in state or "action" in state:
                self._history.append({"t": t, "state": state.get("state"), "action": state.get("action")})

    def note(self, text: str) -> None:
        """A status line of the session (episode ends, warnings), shown in the page's log."""
        if self.server is None:
            return
        with self._lock:
            self._notes.append({"t": time.time(), "text": str(text)})
            self.state_seq += 1

    # ------------------------------------------------------------------ the console's side
    def snapshot(self) -> dict[str, Any]:
        """The current state, the last notes and the controls (what a page that (re)connects is sent)."""
        with self._lock:
            return {"type": "state", "state": dict(self._state), "notes": list(self._notes),
                    "controls": [c.to_json() for c in self.controls], "mode": self.mode, "name": self.name}

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._history)

    def frames(self) -> tuple[int, Mapping[str, np.ndarray], float]:
        """(seq, the latest camera frames, their capture time)."""
        with self._lock:
            return self.seq, self._images, self._t_capture

    def press(self, key: str) -> bool:
        """Deliver a control's key into the session's event queue; False (nothing sent) for any other key."""
        if key not in {c.key for c in self.controls} or self.keys is None:
            return False
        self.keys.inject(key)
        self.n_events += 1
        self.events.append((time.time(), key))
        return True


def period(obs: Mapping[str, np.ndarray], action: np.ndarray | None, **fields: Any
           ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`publish()`'s arguments for one control period of a session loop: (state, images). The state is
    `fields` (phase, counters, ...) with the observation's state vector and the executed `action` as short
    lists (4 decimals) for the page's plots; the images are the observation's camera frames by camera name."""
    from robo.spec import IMAGE_PREFIX, STATE

    def short(x: Any) -> list | None:
        return None if x is None else np.asarray(x, np.float64).round(4).tolist()

    images = {k[len(IMAGE_PREFIX):]: v for k, v in obs.items() if k.startswith(IMAGE_PREFIX)}
    return {**fields, "state": short(obs.get(STATE)), "action": short(action)}, images


def cell_health(env: Any) -> dict[str, Any]:
    """Controller health of a CellEnv (or nothing for a fast-path task env): the watchdog hold, limits
    hit (targets rejected), loop lateness, late / dropped steps. Read from the console's thread."""
    u = getattr(env, "unwrapped", env)
    arm = getattr(u, "arm", None)
    out: dict[str, Any] = {"late_steps": int(getattr(u, "n_late", 0)), "dropped_steps": int(getattr(u, "n_dropped", 0)),
                           "holds": int(getattr(u, "n_holds", 0)), "refused": int(getattr(u, "n_refused", 0))}
    if arm is None or not hasattr(arm, "controller_status"):
        return out
    try:
        status = arm.controller_status()
        ctrl = getattr(arm, "ctrl", None)
        stats = ctrl.stats() if ctrl is not None and hasattr(ctrl, "stats") else {}
    except Exception as e:  # noqa: BLE001 - a closing controller: say so, never raise into the console
        return {**out, "error": " ".join(str(e).split())}
    out.update(held=bool(status.get("held", False)), running=bool(status.get("running", False)),
               watchdog_trips=int(status.get("watchdog_trips", 0)), overruns=int(status.get("overruns", 0)),
               limits_hit=int(status.get("rejected_out_of_range", 0)) + int(status.get("rejected_nonfinite", 0)),
               rejected_while_held=int(status.get("rejected_while_held", 0)))
    lat = stats.get("lateness_us") if isinstance(stats, dict) else None
    if isinstance(lat, dict):
        out["lateness_us"] = {k: float(lat[k]) for k in ("p50", "p99") if k in lat}
        if "max_lateness_us" in stats:
            out["lateness_us"]["max"] = float(stats["max_lateness_us"])
    return out
