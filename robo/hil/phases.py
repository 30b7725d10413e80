"""The phases of a human-in-the-loop episode, and who acts in each: a state machine the session loop owns.

    autonomous --pause--> paused --takeover--> recovery --correct--> correction --handback--> autonomous
         |                  ^  \\---resume---> (the phase it paused)                 |            (hg-dagger)
         \\----takeover------+---------------> recovery                             \\--> end     (rac)

- autonomous: the policy (and its residual) acts.
- paused: the controller holds; frames are recorded with action_source "hold" (never trained on).
- recovery: a person drives the arm back to a state the policy knows (RaC's recovery segment).
- correction: a person finishes the sub-task (RaC's correction segment; HG-DAgger's whole takeover).

Strategies: `rac` (RaC: the episode ends after a correction, the policy never acts again in it) and
`hg-dagger` (HG-DAgger: handing back returns control to the policy). `end` ends the episode in any phase.
The policy never sees this machine: it is asked for actions only while the phase is autonomous.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PHASES = ("autonomous", "paused", "recovery", "correction")
HUMAN_PHASES = ("recovery", "correction")
STRATEGIES = ("rac", "hg-dagger")
#: operator events the machine understands (keys: robo.hil.operators.SESSION_KEYS)
EVENTS = ("pause", "resume", "takeover", "correct", "handback", "end")


@dataclass
class Counters:
    """Per episode (and summed per session): takeovers, and seconds each party spent in control."""

    interventions: int = 0
    human_s: float = 0.0
    autonomous_s: float = 0.0
    paused_s: float = 0.0
    steps: dict[str, int] = field(default_factory=lambda: {p: 0 for p in PHASES})

    def add(self, other: Counters) -> None:
        self.interventions += other.interventions
        self.human_s += other.human_s
        self.autonomous_s += other.autonomous_s
        self.paused_s += other.paused_s
        for p, n in other.steps.items():
            self.steps[p] = self.steps.get(p, 0) + n

    def to_json(self) -> dict[str, object]:
        return {"interventions": self.interventions, "human_s": round(self.human_s, 3),
                "autonomous_s": round(self.autonomous_s, 3), "paused_s": round(self.paused_s, 3),
                "steps": dict(self.steps)}


class PhaseMachine:
    """One episode's phase, the takeover counter and the time each phase took (see the module doc)."""

    def __init__(self, strategy: str = "rac") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy={strategy!r} is not one of {STRATEGIES}")
        self.strategy = strategy
        self.reset()

    def reset(self) -> None:
        """A new episode: autonomous, no takeovers yet."""
        self.phase = "autonomous"
        self.ended = False
        self.intervention_id = -1  # the current (or last) takeover of this episode, -1 = none yet
        self.counters = Counters()
        self.history: list[str] = ["autonomous"]  # the phases in the order they were entered
        self._before_pause = "autonomous"

    @property
    def human(self) -> bool:
        return self.phase in HUMAN_PHASES

    def handle(self, event: str) -> bool:
        """Apply one operator event; True when it changed the phase (or ended the episode).

        Events that make no sense in the current phase (e.g. `correct` while autonomous) are ignored:
        a key pressed twice must never do something else the second time."""
        if event not in EVENTS:
            raise ValueError(f"phase event {event!r} is not one of {EVENTS}")
        if self.ended:
            return False
        p = self.phase
        if event == "end":
            self.ended = True
            return True
        if event == "pause" and p != "paused":
            self._before_pause = p
            return self._enter("paused")
        if event == "resume" and p == "paused":
            return self._enter(self._before_pause)
        # paused during a takeover: the takeover goes on from the phase it paused
        held = self._before_pause if p == "paused" else p
        if event == "takeover":
            if held == "autonomous":
                self.intervention_id += 1
                self.counters.interventions += 1
                return self._enter("recovery")
            return self._enter(held) if p == "paused" else False
        if event == "correct" and held == "recovery":
            return self._enter("correction")
        if event == "handback" and held in HUMAN_PHASES:
            if self.strategy == "rac" and held == "correction":
                self.ended = True  # RaC: a correction finishes the episode
                return True
            return self._enter("autonomous")
        return False

    def tick(self, dt: float) -> None:
        """Count one control period of `dt` s spent in the current phase."""
        self.counters.steps[self.phase] += 1
        if self.phase == "paused":
            self.counters.paused_s += dt
        elif self.human:
            self.counters.human_s += dt
        else:
            self.counters.autonomous_s += dt

    def _enter(self, phase: str) -> bool:
        self.phase = phase
        self.history.append(phase)
        return True
