"""Arms whose controller runs its own real-time loop (robo.drivers.rt: MuJoCo on the wall clock, libfranka).

Python never moves such an arm itself: it writes targets into the controller's latest-command slot,
and the C++ loop interpolates them, applies the limits and watches for stale commands. This class
gives every such driver the same answers to "hold still", "carry on" and "go home":

    arm.hold()          # drop queued actions, re-send the last target once (arms the watchdog), and
                        # return when the controller reports its own watchdog hold (`ctrl.held`)
    arm.rearm()         # leave the hold: target := the measured pose, commands accepted again
    arm.move_home()     # stream joint targets to `home_q` through the controller, then Cartesian hold
    arm.controller_status()   # mode, hold, event counters, straight from the controller

A driver subclasses `ControlledArm`, keeps its controller in `self.ctrl` (the controller contract of
docs/CONTRACTS.md plus `start/stop`, `running`, `held`, `rearm`, `state`, `events`, `config`) and its home
in `self.home_q`, and implements `_resend_target()` and `_sync_targets_from_controller()`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from robo.hal.resource import Arm

# counters reported by controller_status (names of robo.drivers.rt.EVENT_NAMES)
STATUS_EVENTS = ("watchdog_trips", "rearms", "rejected_nonfinite", "rejected_out_of_range", "rejected_while_held",
                 "commands_accepted", "overruns")


class ControlledArm(Arm):
    """Base of arm drivers driven through a real-time controller loop (see the module docstring)."""

    ctrl: Any = None
    home_q: np.ndarray

    # ---------------------------------------------------------------- driver hooks
    def _resend_target(self) -> None:
        """Send the last accepted target again (no motion; starts the watchdog's clock)."""
        raise NotImplementedError

    def _sync_targets_from_controller(self) -> None:
        """Make the driver's own last-target bookkeeping equal the controller's measured pose."""
        raise NotImplementedError

    # ---------------------------------------------------------------- the loop
    @property
    def loop_running(self) -> bool:
        """True while the controller's own thread ticks (real-time mode)."""
        return self.ctrl is not None and bool(getattr(self.ctrl, "running", False))

    def watchdog_timeout_s(self) -> float:
        """The controller's stale-command timeout (s): its config, or 3 policy periods."""
        cfg = getattr(self.ctrl, "config", None)
        t = float(getattr(cfg, "watchdog_timeout_s", 0.0) or 0.0)
        return t if t > 0 else 3.0 / float(getattr(cfg, "policy_hz", 10.0) or 10.0)

    @property
    def held(self) -> bool:
        return self.loop_running and bool(self.ctrl.held)

    def hold(self, timeout_s: float | None = None) -> bool:
        self.cancel_actions()
        if not self.loop_running:
            return True  # nothing ticks: nothing moves
        if self.ctrl.held:
            return True
        self._resend_target()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.watchdog_timeout_s() + 1.0)
        while not self.ctrl.held and time.monotonic() < deadline:
            time.sleep(0.005)
        return bool(self.ctrl.held)

    def rearm(self) -> None:
        if self.loop_running and self.ctrl.held:
            self.ctrl.rearm()
        self._sync_targets_from_controller()

    def move_home(self, timeout_s: float = 20.0, *, tolerance_rad: float = 0.01, rate_hz: float = 10.0,
                  max_step_rad: float = 0.1) -> bool:
        """Stream joint targets towards `home_q` (at most `max_step_rad` per joint per target, `rate_hz`
        targets a second, so the watchdog never trips), gripper open; then hold the pose in Cartesian
        space (`ctrl.reset()`). True when every joint is within `tolerance_rad` of home."""
        self.require_lease("move")
        self.cancel_actions()
        self.rearm()
        home = np.asarray(self.home_q, np.float64)
        width = float(getattr(getattr(self.ctrl, "config", None), "gripper_max_width", 0.08))
        deadline = time.monotonic() + timeout_s
        reached = False
        while time.monotonic() < deadline:
            q = self._measured_q()
            if np.abs(q - home).max() < tolerance_rad:
                reached = True
                break
            if not self.ctrl.set_joint_target(q + np.clip(home - q, -max_step_rad, max_step_rad), width):
                break  # refused (held, out of range): stop here, the caller reports it
            self._tick(1.0 / rate_hz)
        self.ctrl.reset()
        self._sync_targets_from_controller()
        return reached

    def _measured_q(self) -> np.ndarray:
        """Measured joint positions (7,) rad."""
        return np.asarray(self.ctrl.state()["q"], np.float64)

    def _tick(self, dt: float) -> None:
        """Let `dt` seconds of control pass (real-time: wall clock)."""
        time.sleep(dt)

    def controller_status(self) -> dict[str, Any]:
        if self.ctrl is None:
            return {}
        state = self.ctrl.state()
        events = self.ctrl.events()
        out: dict[str, Any] = {"running": self.loop_running, "held": bool(self.ctrl.held),
                               "mode": str(state.get("mode", ""))}
        out.update({k: int(events[k]) for k in STATUS_EVENTS if k in events})
        return out
