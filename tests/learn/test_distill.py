"""The 1-step consistency head (robo.learn.distill, `robo distill`): distilled from the lift flow base (K = 4
Euler steps), it matches its teacher's executed actions on held-out states from the same initial noise,
and it is an ordinary checkpoint (loads, evaluates, records its teacher). Its latency against the teacher
is measured in scripts/bench_policy.py, not here.

Tolerance: mean |student - teacher| of the executed actions below 0.05 in normalised units (the action
range is [-1, 1], so 2.5% of it) and below a third of the teacher's own spread between two initial noises.
"""

from __future__ import annotations

import json

from robo.learn.distill import DistillConfig, distill
from robo.learn.evaluate import evaluate
from robo.policies import FlowPolicy, load_policy

TASK = "PandaLift-v0"


def test_consistency_head_matches_its_teacher_on_held_out_states(lift_bc, tmp_path):
    root, summary = lift_bc
    cfg = DistillConfig(policy=summary["checkpoint"], out=str(tmp_path / "head"), steps=1200, batch_size=128,
                        holdout_episodes=4, device="cpu", torch_threads=1)
    result = distill(cfg)
    held = result["holdout"]
    print(f"\nheld-out match: {held}")
    assert held["n_states"] > 50  # 4 held-out lift demos of ~17 frames
    assert held["mean_abs_error"] < 0.05, held
    assert held["mean_abs_error"] < held["teacher_spread"] / 3, held
    student, teacher = load_policy(tmp_path / "head"), load_policy(summary["checkpoint"])
    assert isinstance(student, FlowPolicy) and student.config.num_inference_steps == 1
    info = json.loads((tmp_path / "head" / "train_info.json").read_text())
    assert info["teacher_steps"] == 4 and info["env_id"] == TASK and info["distilled_from"].endswith("checkpoint")
    # usable where a policy is: the same evaluation as its teacher, on the same seeds
    s, t = evaluate(TASK, student, 40, seed=20_000), evaluate(TASK, teacher, 40, seed=20_000)
    print(f"{t.summary('teacher (K=4)')}\n{s.summary('1-step head')}")
    assert abs(s.success_rate - t.success_rate) <= 0.2, (t.summary(), s.summary())


def test_robo_distill_command(lift_bc, tmp_path, capsys):
    from robo.cli import main

    root, summary = lift_bc  # in-process CLI: the same parser, dispatch and error handling as the console script
    assert main(["distill", "--policy", str(summary["checkpoint"]), "--out", str(tmp_path / "h"), "steps=20",
                 "batch_size=16", "holdout_episodes=2", "device=cpu", "torch_threads=1"]) == 0
    out = capsys.readouterr().out
    assert "1-step head:" in out and "held-out match on" in out
    assert load_policy(tmp_path / "h").config.num_inference_steps == 1
    assert main(["distill", "--policy", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "teacher checkpoint not found" in err and "Traceback" not in err
