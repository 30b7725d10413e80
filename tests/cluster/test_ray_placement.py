"""`robo train --residual --ray` on the two-node loopback cluster (conftest.py): robot actors on their
robot's node holding its HAL lease (the scripted operator intervening there), a second job refused a held
robot, a SIGKILLed actor restarted while the learner trains on, and success on the lift base rising as in
the embedded test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_helpers import LIFT, cluster_status, robo

from robo.cluster.placement import placement_of
from robo.data.segments import SegmentStore
from robo.hal import lease

pytestmark = pytest.mark.timeout(600)
STEPS = 4000
RISE = 0.2
SMALL = ["critic_warmup_updates=10", "batch_size=32", "actor_hidden=32", "critic_hidden=32", "num_q=2", "utd=1",
         "device=cpu", "torch_threads=1", "eval_every=1000000", "eval_episodes=1", "final_eval_episodes=2",
         "final_videos=0", "checkpoint_every=1000000", "buffer_size=5000"]


def _train(*args: str, out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robo.cli", "train", "--residual", "--ray", "--out", str(out),
                             *args], stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)


def _wait(pred, proc: subprocess.Popen, log: Path, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        assert proc.poll() is None, f"the run ended before {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)
    raise AssertionError(f"no {what} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def _placement(run: Path) -> dict | None:
    try:
        return placement_of(run)
    except (OSError, ValueError):
        return None


def test_robot_actors_run_on_their_robots_node_and_hold_its_lease(ray_cluster, lift_bc, tmp_path):
    root, summary = lift_bc
    address, nodes = ray_cluster["address"], ray_cluster["nodes"]
    run, log = tmp_path / "run", tmp_path / "run.log"
    # with the scripted operator in each robot actor (HIL-SERL through the same placement)
    proc = _train("--address", address, "--actors-per-robot", "1", "--teleop", "scripted", f"task={LIFT}",
                  f"base={summary['checkpoint']}",
                  f"demos={root / 'demos'}", "total_env_steps=200", "learning_starts=80", *SMALL, out=run, log=log)
    try:
        keys = {"robot:rayA/arm": "sim_panda:rayA/arm", "robot:rayB/arm": "sim_panda:rayB/arm"}

        def leased():  # each robot's actor has built its cell env: the HAL lease is taken on its node
            p = _placement(run)
            if not p or len(p["actors"]) != 2 or any(not a["runs"] for a in p["actors"]):
                return None
            held = {r: lease.holders(k) for r, k in keys.items()}
            return (p, held) if all(held.values()) else None

        p, held = _wait(leased, proc, log, 240, "HAL leases taken by the robot actors")
        for a in p["actors"]:
            assert a["kind"] == "robot"
            assert [h.pid for h in held[a["robot"]]] == [a["runs"][-1]["pid"]]  # the Ray actor holds the HAL lease
        with pytest.raises(lease.LeaseError, match="already leased"):
            lease.acquire("sim_panda:rayA/arm")  # a job outside Ray cannot take the arm either
        status = {r["cell"]: r for r in cluster_status(address) if r["cell"]}
        holder = status["rayA"]["resources"]["robot:rayA/arm"]  # the job's placement group, then the HAL lease
        pid_a = next(a["runs"][-1]["pid"] for a in p["actors"] if a["robot"] == "robot:rayA/arm")
        assert holder == f"robo/{run.name}/robot:rayA/arm; HAL lease exclusive pid {pid_a}", holder

        second = robo("train", "--residual", "--ray", "--address", address, "--actors-per-robot", "1",
                      "--robots", "robot:rayA/arm", "--out", str(tmp_path / "second"), f"task={LIFT}",
                      f"base={summary['checkpoint']}", *SMALL, timeout=180)
        assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
        assert f"robot:rayA/arm is held by robo/{run.name}/robot:rayA/arm" in second.stderr
        assert not (tmp_path / "second").exists()  # refused before anything started

        assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    p = placement_of(run)
    ran = {a["robot"]: a["runs"][-1]["node_id"] for a in p["actors"]}
    assert ran == {"robot:rayA/arm": nodes["rayA"], "robot:rayB/arm": nodes["rayB"]}  # each on its robot's node
    with SegmentStore(run / "replay") as store:
        actors = {meta["actor"] for _, meta in store}
        n_rows = len(store)
        human = sum(int((rows["human"] > 0.5).sum()) for rows, _ in store)
    assert actors == {0, 1} and n_rows >= 200
    report = json.loads((run / "report.json").read_text())
    assert report["actors"] == 2 and set(report["results"]) == {"base", "residual"}
    assert human > 0 and report["human_rows"] == human  # the operator took over on the robots' nodes
    assert all(lease.holders(k) == [] for k in keys.values())  # released with the run
    status = {r["cell"]: r for r in cluster_status(address) if r["cell"]}
    assert status["rayA"]["resources"]["robot:rayA/arm"] == "free"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0.0


def test_sim_actors_learn_and_killed_processes_are_restarted(ray_cluster, lift_bc, lift_residual_config, tmp_path):
    """The lift learning test's config through two simulated Ray actors, at a third of its budget (4000
    env steps: the whole 12000 take ~4.5 min on this loaded 2-core machine, over tests/cluster's budget).
    Actor 1 is SIGKILLed after the learner's first checkpoint (1500 rows) and Ray restarts it; the learner
    is SIGKILLed after its second (3000 rows) and resumes from its run folder; the run finishes and success
    on 30 fixed seeds rises over the base's."""
    run, log = tmp_path / "run", tmp_path / "run.log"
    proc = _train("--address", ray_cluster["address"], "--actors", "2", "--config", str(lift_residual_config),
                  f"total_env_steps={STEPS}", "eval_every=2000", "checkpoint_every=1500", "eval_episodes=6",
                  "final_eval_episodes=30", out=run, log=log)
    state = run / "checkpoint" / "state.pt"
    try:
        p = _wait(lambda: state.is_file() and _placement(run), proc, log, 400, "a first checkpoint")
        first = _mtime(state)
        victim = next(a for a in p["actors"] if a["actor_id"] == 1)
        pid = victim["runs"][-1]["pid"]
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: _mtime(state) != first, proc, log, 400, "a second checkpoint")
        learner_pid = placement_of(run)["learner"]["runs"][-1]["pid"]
        os.kill(learner_pid, signal.SIGKILL)
        assert proc.wait(timeout=500) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "actor 1 died" in text and "the learner died" in text and f"resumed {run}" in text
    p = placement_of(run)
    victim = next(a for a in p["actors"] if a["actor_id"] == 1)
    assert victim["restarts"] == 1 and len(victim["runs"]) == 2 and victim["runs"][1]["pid"] != pid
    assert victim["runs"][1]["restarted"]  # Ray reconstructed the same actor
    assert p["learner"]["restarts"] == 1 and p["learner"]["runs"][1]["pid"] != learner_pid
    assert p["learner"]["runs"][1]["node_id"] == p["learner"]["runs"][0]["node_id"]  # pinned to its run folder
    with SegmentStore(run / "replay") as store:
        sessions = {meta["uid"].split("-")[1] for _, meta in store if meta["actor"] == 1}
        n_rows = len(store)
    assert len(sessions) == 2 and n_rows >= STEPS  # the restarted actor sent rows too; the budget was met
    report = json.loads((run / "report.json").read_text())
    assert report["env_steps"] >= STEPS
    base, tuned = report["results"]["base"]["success_rate"], report["results"]["residual"]["success_rate"]
    print(f"\nlift over Ray, {report['results']['base']['n_episodes']} seeds: base {base:.0%} -> residual {tuned:.0%}")
    assert tuned >= base + RISE, report["results"]


@pytest.mark.parametrize("algo, more", [
    ("reinflow", []),
    ("rl100", ["offline_rounds=1", "iql_steps=20", "offline_steps=4", "ope_every=2", "ope_steps=20",
               "bc_retrain_steps=0", "round_eval_episodes=0", "critic_batch=16", "offline_batch=8"]),
])
def test_policy_finetuners_go_through_the_same_placement(ray_cluster, lift_bc, tmp_path, algo, more):
    """`robo train --algo reinflow | rl100 --ray`: the same learner / actor placement as the residual
    trainers (one simulated actor here), the same run folder, an ordinary fine-tuned policy at the end."""
    root, summary = lift_bc
    run = tmp_path / algo
    tiny = ["n_envs=2", "rollout_chunks=5", "n_minibatches=2", "update_epochs=1", "total_env_steps=160",
            "eval_every=100000", "eval_episodes=2", "final_eval_episodes=2", "final_videos=0", "device=cpu",
            "torch_threads=1", "value_hidden=16", "value_layers=1"]
    proc = robo("train", "--algo", algo, "--ray", "--address", ray_cluster["address"], "--actors", "1",
                "--out", str(run), f"task={LIFT}", f"base={summary['checkpoint']}", f"demos={root / 'demos'}",
                *tiny, *more, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    p = placement_of(run)
    assert [a["kind"] for a in p["actors"]] == ["sim"] and p["learner"]["runs"]
    with SegmentStore(run / "replay") as store:
        assert {meta["actor"] for _, meta in store} == {0} and len(store) > 0  # chunk rows from the Ray actor
    report = json.loads((run / "report.json").read_text())
    assert report["actors"] == 1 and report["algo"] == algo
    assert (run / "policy").is_dir()  # an ordinary robo checkpoint (robo eval / serve / deploy)
