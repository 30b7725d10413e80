"""Human-in-the-loop sessions: RaC recovery-and-correction and HG-DAgger on a cell, interventions into RL.

    robo.hil.phases     the phase state machine (autonomous, paused, recovery, correction) and its counters
    robo.hil.operators  who intervenes: a person with a teleop device, or the scripted operator (sim)
    robo.hil.gate       the per-env gate between policy and robot: one implementation for sessions and RL
    robo.hil.session    `robo intervene`: sessions, labels, rounds of sessions + retraining
"""

from robo.hil.gate import Decision, DeviceLost, Intervention
from robo.hil.operators import DeviceOperator, ScriptedOperator, ScriptedOperatorConfig, TaskView
from robo.hil.phases import PHASES, STRATEGIES, PhaseMachine

__all__ = ["PHASES", "STRATEGIES", "Decision", "DeviceLost", "DeviceOperator", "Intervention", "PhaseMachine",
           "ScriptedOperator", "ScriptedOperatorConfig", "TaskView"]
