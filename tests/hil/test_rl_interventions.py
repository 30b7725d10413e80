"""Interventions into residual RL on the sim cell (HIL-SERL style): the scripted operator takes over
during collection; its transitions carry the executed action and land in the online buffer and in the
demo half of every batch, and the learning curve counts them."""

from __future__ import annotations

import numpy as np
import pytest

from robo.data.segments import SegmentStore
from robo.hil import Intervention, ScriptedOperator, ScriptedOperatorConfig
from robo.learn.residual_td3 import ALGORITHM, ResidualTD3Config
from robo.learn.spine import Collector, LearnerCore, prepare

pytestmark = pytest.mark.timeout(300)
LIFT = "PandaLift-v0"
SMALL = dict(actor_hidden=32, critic_hidden=32, num_q=2, utd=1, batch_size=32, critic_warmup_updates=10,
             eval_every=1_000_000, eval_episodes=1, final_eval_episodes=1, final_videos=0, checkpoint_every=1_000_000,
             torch_threads=1, buffer_size=2000, device="cpu", n_step=1)


def test_human_rows_go_into_both_buffers_with_the_executed_action(lift_bc, sim_cell, tmp_path):
    from robo.cells.training import rl_env_fn
    from robo.policies import load_policy

    root, summary = lift_bc
    cfg = ResidualTD3Config(task=LIFT, base=str(summary["checkpoint"]), demos=str(root / "demos"), total_env_steps=60,
                            n_envs=1, learning_starts=30, **SMALL)
    setup = prepare(ALGORITHM, cfg, tmp_path / "run", placement="embedded")
    core = LearnerCore(setup)
    data = core.learner.data
    n_demo0 = len(data.demo)
    executed: list[tuple[np.ndarray, bool]] = []

    def gate(env):
        op = ScriptedOperator(env, ScriptedOperatorConfig(no_progress_steps=3, handback_steps=6))
        return Intervention(op, "hg-dagger", control_hz=10.0)

    collector = Collector(ALGORITHM, cfg, setup.base, seed=0, stats=setup.view.normalizer_stats,
                          env_fn=rl_env_fn(sim_cell, LIFT, load_policy(summary["checkpoint"])), intervention_fn=gate)
    try:
        while core.n_rows < cfg.total_env_steps:
            got = collector.step()
            cell = collector.envs.envs[0]
            executed.append((cell.last_info.get("executed"), bool(collector.gates[0].phases.human)))
            if got.rows is not None:
                core.add(got.rows, got.meta())
    finally:
        collector.close()
    human = core.state["human_rows"]
    assert human > 5 and collector.human_steps >= human  # the operator took over, and it was counted
    assert len(data.demo) == n_demo0 + human  # every human row joined the demo half
    core.sync()
    with SegmentStore(tmp_path / "run" / "replay") as store:
        rows = [r for r, _ in store]
    flags = np.concatenate([r["human"] for r in rows])
    assert int((flags > 0.5).sum()) == human and len(flags) == core.n_rows  # ...and the online buffer
    # a human row's action is what the operator executed (normalised), not "human minus base"
    acts = np.concatenate([r["action"] for r in rows])[flags > 0.5]
    demo_tail = data.demo.data["action"][(data.demo.ptr - human + np.arange(human)) % data.demo.capacity]
    np.testing.assert_allclose(np.sort(acts, axis=0), np.sort(demo_tail, axis=0), atol=1e-6)
    assert np.abs(acts).max() <= 1.0 and (np.abs(acts[:, :3]) > 0.05).any()
    core.close()
    setup.view.close()


def test_the_scripted_operator_intervenes_in_actor_processes(lift_bc, sim_cell, tmp_path):
    """`robo train --residual --cell <sim> --teleop scripted --actors 1`: the actor process gates its cell
    envs; the human rows cross the wire with their flag and the learner's report counts them. A person's
    device with actor processes is refused (its keys are at this terminal)."""
    import json
    import subprocess
    import sys

    from robo.cells.training import check_teleop_placement

    root, summary = lift_bc
    out = tmp_path / "run"
    small = [f"{k}={v}" for k, v in SMALL.items()]
    proc = subprocess.run([sys.executable, "-m", "robo.cli", "train", "--residual", "--cell", str(sim_cell),
                           "--teleop", "scripted", "--actors", "1", "--out", str(out), f"task={LIFT}",
                           f"base={summary['checkpoint']}", f"demos={root / 'demos'}", "total_env_steps=150",
                           "learning_starts=50", "n_envs=2", *small], capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with SegmentStore(out / "replay") as store:
        human = sum(int((rows["human"] > 0.5).sum()) for rows, _ in store)
        assert {meta["actor"] for _, meta in store} == {0}
    report = json.loads((out / "report.json").read_text())
    assert human > 0 and report["human_rows"] == human
    with pytest.raises(ValueError, match="robo actor --cell <cell> --teleop spacemouse"):
        check_teleop_placement("spacemouse", 1)
    check_teleop_placement("scripted", 4)  # the scripted operator runs in any process
