"""The phase machine of human-in-the-loop episodes (robo.hil.phases): RaC and HG-DAgger rules, pause."""

import pytest

from robo.hil.phases import PhaseMachine


def drive(m: PhaseMachine, *events: str) -> list[str]:
    for e in events:
        m.handle(e)
    return m.history


def test_rac_ends_the_episode_after_a_correction():
    m = PhaseMachine("rac")
    assert drive(m, "takeover", "correct") == ["autonomous", "recovery", "correction"]
    assert not m.ended and m.intervention_id == 0 and m.counters.interventions == 1
    m.handle("handback")
    assert m.ended and m.history[-1] == "correction"  # the policy never acts again in this episode


def test_hg_dagger_returns_control_and_counts_each_takeover():
    m = PhaseMachine("hg-dagger")
    drive(m, "takeover", "correct", "handback", "takeover", "handback")
    assert m.history == ["autonomous", "recovery", "correction", "autonomous", "recovery", "autonomous"]
    assert not m.ended and m.intervention_id == 1 and m.counters.interventions == 2


def test_pause_resumes_the_phase_it_paused_and_events_out_of_place_do_nothing():
    m = PhaseMachine("rac")
    assert not m.handle("correct") and not m.handle("handback") and not m.handle("resume")
    drive(m, "takeover", "pause")
    assert m.phase == "paused"
    m.handle("resume")
    assert m.phase == "recovery" and m.counters.interventions == 1  # no new takeover
    drive(m, "pause", "takeover")  # takeover while paused in a takeover: continue it, not a new one
    assert m.phase == "recovery" and m.intervention_id == 0
    drive(m, "pause", "correct")
    assert m.phase == "correction"
    m.handle("end")
    assert m.ended and not m.handle("takeover")


def test_counters_split_time_by_who_is_in_control():
    m = PhaseMachine("hg-dagger")
    for events in ([], [], ["pause"], ["takeover"], [], ["correct"], ["handback"]):
        for e in events:
            m.handle(e)
        m.tick(0.1)
    c = m.counters
    assert c.steps == {"autonomous": 3, "paused": 1, "recovery": 2, "correction": 1}
    assert c.human_s == pytest.approx(0.3) and c.autonomous_s == pytest.approx(0.3) and c.paused_s == pytest.approx(0.1)


def test_unknown_strategy_and_event_are_refused():
    with pytest.raises(ValueError, match="strategy"):
        PhaseMachine("dagger")
    with pytest.raises(ValueError, match="phase event"):
        PhaseMachine().handle("jump")
