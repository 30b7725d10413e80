"""Actor/learner processes on the "reach" task: learning, versioned weights, kill -9 + --resume,
actor reconnection."""

from __future__ import annotations

import os
import signal
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from robo.data.segments import SegmentStore
from robo.runtime.algo import ReachActor, ReachLearner
from robo.runtime.learner import Learner, LearnerConfig, launch_local
from robo.transport import RpcClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from transport_helpers import free_port, spawn, stop, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def episodes(run_dir: Path) -> list[tuple[dict, dict]]:
    store = SegmentStore(run_dir / "replay")
    out = list(store)
    store.close()
    return out


def test_async_actors_learner_success_rises(tmp_path):
    run_dir = tmp_path / "run"
    rc = launch_local(None, 2, run_dir=run_dir, algo="reach", total_env_steps=5000, utd=1.0, timeout_s=100)
    assert rc == 0
    eps = episodes(run_dir)
    rows = sum(len(a["obs"]) for a, _ in eps)
    assert rows >= 5000
    success = np.array([m["success"] for _, m in eps], float)
    first, last = success[:100].mean(), success[-100:].mean()
    assert last >= first + 0.25, (first, last)  # the learner's weights reached the actors and helped
    assert {m["actor"] for _, m in eps} == {0, 1}
    versions = [m["policy_version"] for _, m in eps]
    assert len(set(versions)) >= 5 and versions[-1] > versions[0]
    for arrays, meta in eps:  # every row is tagged with the version that produced it
        assert (arrays["policy_version"] == meta["policy_version"]).all()


def ping(endpoint: str) -> dict:
    with RpcClient(endpoint, name="probe", timeout_s=1.0, retries=5) as c:
        return c.ping(timeout_s=1.0, retries=5)[1]


def test_learner_kill9_resume_keeps_buffer_and_actor_reconnects(tmp_path):
    run_dir = tmp_path / "run"
    rpc, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    ready = tmp_path / "ready.json"
    learner_cmd = [
        "-m",
        "robo.cli",
        "learner",
        "--algo",
        "reach",
        "--run-dir",
        str(run_dir),
        "--bind",
        rpc,
        "--pub",
        pub,
        "--total-env-steps",
        "2500",
        "--checkpoint-every",
        "50",
        "--ready-file",
        str(ready),
        "--log-level",
        "WARNING",
    ]
    learner = spawn(learner_cmd)
    actor = None
    try:
        wait_for(ready.exists, 60, "learner 1")
        actor = spawn(
            [
                "-m",
                "robo.cli",
                "actor",
                "--algo",
                "reach",
                "--learner",
                rpc,
                "--weights",
                pub,
                "--actor-id",
                "3",
                "--log-level",
                "WARNING",
            ]
        )
        wait_for(
            lambda: ping(rpc)["n_rows"] >= 1000 and (run_dir / "learner" / "state.pt").exists(),
            60,
            "transitions and a checkpoint",
        )
        os.kill(actor.pid, signal.SIGSTOP)  # freeze the actor so the count below is exact
        wait_for(lambda: ping(rpc)["n_rows"] == ping(rpc)["n_rows"], 5, "a stable count")
        before = ping(rpc)
        os.kill(learner.pid, signal.SIGKILL)
        learner.wait(10)

        ckpt_step = torch.load(run_dir / "learner" / "state.pt", weights_only=True)["step"]
        assert ckpt_step > 0
        on_disk = SegmentStore(run_dir / "replay")
        assert len(on_disk) == before["n_rows"]  # every acknowledged transition is on disk
        on_disk.close()

        refused = spawn(learner_cmd)  # no --resume on an existing run: refused with a clear error
        assert refused.wait(60) == 1

        ready.unlink()
        learner = spawn(learner_cmd + ["--resume"])
        wait_for(ready.exists, 60, "learner 2")
        after = ping(rpc)
        assert after["n_rows"] == before["n_rows"]  # same transition count after kill -9 + resume
        assert after["run"] == before["run"] and after["incarnation"] == 1
        assert after["step"] >= ckpt_step  # the step count continues from the last checkpoint
        os.kill(actor.pid, signal.SIGCONT)

        assert learner.wait(90) == 0  # reaches total_env_steps with the same actor, then stops
        assert actor.wait(30) == 0  # told to stop by the learner
    finally:
        if actor is not None:
            os.kill(actor.pid, signal.SIGCONT) if actor.poll() is None else None
            stop(actor)
        stop(learner)

    eps = episodes(run_dir)
    by_session = defaultdict(list)
    for _, m in eps:
        by_session[m["uid"].rsplit("-", 1)[0]].append(m["episode"])
    assert len(by_session) == 1
    idx = next(iter(by_session.values()))
    assert len(idx) == len(set(idx))  # no episode stored twice
    assert len(set(range(max(idx) + 1)) - set(idx)) <= 1  # at most the in-flight episode lost
    incarnations = [m["incarnation"] for _, m in eps]
    assert incarnations[0] == 0 and incarnations[-1] == 1  # the actor took the resumed learner's weights


def test_learner_refuses_existing_run_without_resume(tmp_path):
    cfg = LearnerConfig(run_dir=tmp_path, bind="tcp://127.0.0.1:*", pub="tcp://127.0.0.1:*")
    learner = Learner(ReachLearner(), cfg)
    learner.store.append({"x": np.zeros((1, 2))}, {"uid": "u"})
    learner.close()
    with pytest.raises(ValueError, match="pass --resume"):
        Learner(ReachLearner(), cfg)
    elsewhere = LearnerConfig(run_dir=tmp_path / "typo", resume=True, bind="tcp://127.0.0.1:*", pub="tcp://127.0.0.1:*")
    with pytest.raises(ValueError, match="cannot resume: .*typo/replay not found"):
        Learner(ReachLearner(), elsewhere)
    assert not (tmp_path / "typo").exists()
    with pytest.raises(ValueError, match="utd"):
        LearnerConfig(run_dir=tmp_path, utd=0)
    with pytest.raises(ValueError, match="max_lead"):
        LearnerConfig(run_dir=tmp_path, max_lead=-1)


def test_learner_holds_actors_only_while_it_owes_more_than_max_lead(tmp_path):
    """The "hold" flag of acks and heartbeats: off before the algorithm is ready, on once the stored
    transitions outrun `step / utd` by more than `max_lead`, off again when updates catch up."""
    cfg = LearnerConfig(run_dir=tmp_path, bind="tcp://127.0.0.1:*", pub="tcp://127.0.0.1:*", max_lead=20, utd=2)
    algo = ReachLearner()
    learner = Learner(algo, cfg)
    try:
        rows = {"obs": np.zeros((30, 4), np.float32), "action": np.zeros((30, 2), np.float32),
                "episode_success": np.zeros(30, bool)}
        learner.store.append(rows, {"uid": "a"})
        algo.add(rows)
        assert not learner._hold()  # 30 rows owed, but the algorithm is not ready (no successes yet)
        rows["episode_success"][:] = True
        for uid in "bcd":  # 90 successful rows: ReachLearner is ready from 64
            learner.store.append(rows, {"uid": uid})
            algo.add(rows)
        assert learner._hold() and learner._info()["hold"]  # 120 rows, 0 updates: owes 120 > 20
        learner.step = 2 * 100  # 100 rows' worth of updates at utd 2: owes 20, not more
        assert not learner._hold()
        learner.step = 2 * 99
        assert learner._hold()
    finally:
        learner.close()


def test_reach_algo_learns_in_process():
    actor, learner = ReachActor(seed=0, step_time_s=0.0), ReachLearner(seed=0)
    rates = []
    for _ in range(30):
        ok = 0
        for _ in range(20):
            rows, info = actor.run_episode()
            learner.add(rows)
            ok += info["success"]
        while learner.ready() and learner.n_updates < learner.n_rows:
            learner.update()
        actor.load_actor_state({k: np.asarray(v) for k, v in learner.actor_state().items()})
        rates.append(ok / 20)
    assert np.mean(rates[-5:]) > np.mean(rates[:3]) + 0.3
