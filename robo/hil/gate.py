"""The gate between a policy and the robot in a human-in-the-loop episode: one per env, one implementation
for `robo intervene` sessions and for interventions during residual RL (`robo train --residual --teleop`).

Each control period the loop asks `Intervention.decide()` what to execute, given the policy's proposal.
The gate polls the operator's events into the phase machine (robo.hil.phases) and answers with the
action and the frame's labels: the proposal while autonomous, the operator's action while a person (or
the scripted operator) is in control, a hold while the device is not ready. A pause is served inside
`decide()`: the controller holds (`CellEnv.hold()`: asserted from the controller), frames are handed
to `on_hold` at the control rate with action_source "hold", and the controller is rearmed on resume.
When control returns to the policy (a handback, a resume) the answer is `replan`: the policy must
re-plan from the current observation and the loop asks again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from robo.hil.operators import MARKS, Context, DeviceLost
from robo.hil.phases import PhaseMachine

HoldFn = Callable[[dict[str, np.ndarray], np.ndarray, "Decision"], None]

__all__ = ["Decision", "DeviceLost", "Intervention", "hold_action"]


@dataclass
class Decision:
    """What to execute this period and how to label it."""

    action: np.ndarray | None  # normalised (Da,), None when nothing is to be executed (ended, replan)
    source: str = "policy"  # action_source: policy | residual | human | hold
    segment: str = "autonomous"
    intervention_id: int = -1
    ended: bool = False  # the operator ended the episode (rac after a correction, a mark, quit)
    success: bool | None = None  # the operator's mark, when given
    quit: bool = False  # the operator ends the session
    replan: bool = False  # the policy must re-plan from `obs` (control came back to it) and ask again
    obs: dict[str, np.ndarray] | None = None  # the observation after a pause (a cell re-observes on resume)

    @property
    def human(self) -> bool:
        return self.source == "human"


def hold_action(last: np.ndarray | None, act_dim: int) -> np.ndarray:
    """The env-unit action that keeps the arm where it is: zero ee deltas and the gripper as it was (a
    7-d ee_delta action); otherwise the last action (absolute targets hold by repeating)."""
    if last is None:
        return np.zeros(act_dim, np.float32)
    a = np.asarray(last, np.float32).copy()
    if act_dim == 7:
        a[:6] = 0.0
    return a


class Intervention:
    """Phases, operator and labels of one env's episodes (see the module docstring)."""

    def __init__(self, operator: Any, strategy: str = "rac", *, control_hz: float = 10.0,
                 on_hold: HoldFn | None = None, realtime: bool | None = None) -> None:
        self.operator = operator
        self.phases = PhaseMachine(strategy)
        self.dt = 1.0 / float(control_hz)
        self.on_hold = on_hold
        self.realtime = realtime
        self.step = 0
        self.success: bool | None = None
        self.last_action: np.ndarray | None = None  # env units, as last executed
        self._quit = False

    def new_episode(self) -> None:
        self.phases.reset()
        self.operator.new_episode()
        self.step = 0
        self.success = None
        self.last_action = None

    def decide(self, env: Any, obs: dict[str, np.ndarray], proposal: np.ndarray, source: str, scaler: Any) -> Decision:
        """The action to execute now in `env` (observed as `obs`), the policy proposing `proposal`
        (normalised) acted as `source` (policy | residual). Raises DeviceLost after holding the arm."""
        ph = self.phases
        ctx = Context(env, ph, self.step, obs)
        before = ph.phase
        self._apply(self.operator.events(ctx))
        if ph.ended:
            return self._labels(Decision(None, ended=True, success=self.success, quit=self._quit))
        if ph.phase == "paused":
            obs = self._pause(env, ctx)
            ctx = Context(env, ph, self.step, obs)
            if ph.ended:
                return self._labels(Decision(None, ended=True, success=self.success, quit=self._quit, obs=obs))
            if not ph.human:
                return Decision(None, replan=True, obs=obs)
            resumed = obs
        elif before != "autonomous" and ph.phase == "autonomous":
            return Decision(None, replan=True)  # handed back: the policy plans from here
        else:
            resumed = None
        if ph.human:
            try:
                a = self.operator.action(ctx)
            except DeviceLost:
                _hold(env)
                raise
            if a is None:  # the device is not ready to drive (e.g. a leader arm not yet aligned): hold
                a, who = hold_action(self.last_action, len(proposal)), "hold"
            else:
                who = "human"
            d = self._labels(Decision(scaler.normalize(np.asarray(a, np.float32)), who))
        else:
            d = self._labels(Decision(np.asarray(proposal, np.float32), source))
        ph.tick(self.dt)
        self.step += 1
        self.last_action = scaler.unnormalize(d.action)
        d.obs = resumed
        return d

    # ------------------------------------------------------------------ internals
    def _apply(self, events: list[str]) -> None:
        for event in events:
            if event in MARKS:
                if event != "quit":
                    self.success = event == "success"
                self._quit = self._quit or event == "quit"
                self.phases.handle("end")
            elif self.phases.handle(event):
                self.operator.on_phase(self.phases.phase)

    def _labels(self, d: Decision) -> Decision:
        d.segment, d.intervention_id = self.phases.phase, self.phases.intervention_id
        return d

    def _pause(self, env: Any, ctx: Context) -> dict[str, np.ndarray]:
        """Hold until the phase leaves "paused": frames to `on_hold` at the control rate."""
        u = env.unwrapped
        _hold(env)
        realtime = self.realtime if self.realtime is not None else bool(env.metadata.get("realtime", False))
        obs = ctx.obs
        act_dim = int(np.prod(env.action_space.shape))
        while self.phases.phase == "paused" and not self.phases.ended:
            t0 = time.monotonic()
            obs = u.observe() if hasattr(u, "observe") else obs
            if self.on_hold is not None:
                self.on_hold(obs, hold_action(self.last_action, act_dim), self._labels(Decision(None, "hold")))
            self.phases.tick(self.dt)
            self.step += 1
            self._apply(self.operator.events(Context(env, self.phases, self.step, obs)))
            if realtime:
                time.sleep(max(0.0, self.dt - (time.monotonic() - t0)))
        if hasattr(u, "resume"):
            obs = u.resume()
        return obs


def _hold(env: Any) -> bool:
    """The controller holds (a cell); a fast-path task env has none and simply is not stepped."""
    u = env.unwrapped
    return bool(u.hold()) if hasattr(u, "hold") else True
