"""Actor/learner processes on the "reach" test algorithm (tests/runtime/reach_algo.py): learning,
versioned weights, kill -9 + --resume, actor reconnection, holds, refused batches."""

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
from robo.learn.algo import get_algorithm
from robo.learn.spine import LearnerCore, prepare
from robo.runtime.launch import launch_local
from robo.runtime.learner import Learner, LearnerConfig
from robo.transport import RemoteError, RpcClient

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "transport"))
from transport_helpers import free_port, spawn, stop, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(180)
REACH = get_algorithm("reach_algo")  # importable here (sys.path) and in subprocesses (PYTHONPATH)


@pytest.fixture(autouse=True)
def _pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def batches(run_dir: Path) -> list[tuple[dict, dict]]:
    with SegmentStore(run_dir / "replay") as store:
        return list(store)


def test_async_actors_learner_success_rises(tmp_path):
    run_dir = tmp_path / "run"
    assert launch_local("reach_algo", None, 2, run_dir, timeout_s=150) == 0
    got = batches(run_dir)
    assert sum(len(a["obs"]) for a, _ in got) >= 5000
    success = np.array([m["n_success"] / m["n_episodes"] for _, m in got], float)
    first, last = success[:100].mean(), success[-100:].mean()
    assert last >= first + 0.25, (first, last)  # the learner's weights reached the actors and helped
    assert {m["actor"] for _, m in got} == {0, 1}
    versions = [m["policy_version"] for _, m in got]
    assert len(set(versions)) >= 5 and versions[-1] > versions[0]
    for arrays, meta in got:  # every row is tagged with the version that produced it
        assert (arrays["policy_version"] == meta["policy_version"]).all()
    assert (run_dir / "results.md").is_file() and (run_dir / "reach.npz").is_file()  # the learner's report


def ping(endpoint: str) -> dict:
    with RpcClient(endpoint, name="probe", timeout_s=1.0, retries=5) as c:
        return c.ping(timeout_s=1.0, retries=5)[1]


def test_learner_kill9_resume_keeps_buffer_and_actor_reconnects(tmp_path):
    run_dir = tmp_path / "run"
    rpc, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    ready = tmp_path / "ready.json"
    learner_cmd = ["-m", "robo.cli", "learner", "--algo", "reach_algo", "--run-dir", str(run_dir), "--bind", rpc,
                   "--pub", pub, "--total-env-steps", "2500", "--checkpoint-every", "50", "eval_every=100000",
                   "--ready-file", str(ready), "--log-level", "WARNING"]
    learner = spawn(learner_cmd)
    actor = None
    try:
        wait_for(ready.exists, 60, "learner 1")
        actor = spawn(["-m", "robo.cli", "actor", "--algo", "reach_algo", "--learner", rpc, "--weights", pub,
                       "--actor-id", "3", "--log-level", "WARNING"])
        wait_for(lambda: ping(rpc)["step"] > 0, 60, "the first updates")
        n0 = ping(rpc)["n_rows"]
        wait_for(lambda: ping(rpc)["n_rows"] >= max(1000, n0 + 200), 60, "rows and a checkpoint after updates")
        os.kill(actor.pid, signal.SIGSTOP)  # freeze the actor so the count below is exact
        wait_for(lambda: ping(rpc)["n_rows"] == ping(rpc)["n_rows"], 5, "a stable count")
        before = ping(rpc)
        os.kill(learner.pid, signal.SIGKILL)
        learner.wait(10)

        ckpt = torch.load(run_dir / "checkpoint" / "state.pt", weights_only=False)
        ckpt_step = ckpt["learner"]["n_updates"]
        assert ckpt_step > 0
        with SegmentStore(run_dir / "replay") as on_disk:
            assert len(on_disk) == before["n_rows"]  # every acknowledged row is on disk

        refused = spawn(learner_cmd)  # no --resume on an existing run: refused with a clear error
        assert refused.wait(60) == 1

        ready.unlink()
        learner = spawn(learner_cmd + ["--resume"])
        wait_for(ready.exists, 60, "learner 2")
        after = ping(rpc)
        assert after["n_rows"] == before["n_rows"]  # same row count after kill -9 + resume
        assert after["run"] == before["run"] and after["incarnation"] == 1
        assert after["step"] >= ckpt_step  # the update count continues from the last checkpoint
        os.kill(actor.pid, signal.SIGCONT)

        assert learner.wait(120) == 0  # reaches total_env_steps with the same actor, then stops
        assert actor.wait(30) == 0  # told to stop by the learner
    finally:
        if actor is not None:
            if actor.poll() is None:
                os.kill(actor.pid, signal.SIGCONT)
            stop(actor)
        stop(learner)

    got = batches(run_dir)
    by_session = defaultdict(list)
    for _, m in got:
        by_session[m["uid"].rsplit("-", 1)[0]].append(m["batch"])
    assert len(by_session) == 1
    idx = next(iter(by_session.values()))
    assert len(idx) == len(set(idx))  # no batch stored twice
    assert len(set(range(max(idx) + 1)) - set(idx)) <= 1  # at most the batch in flight lost
    incarnations = [m["incarnation"] for _, m in got]
    assert incarnations[0] == 0 and incarnations[-1] == 1  # the actor took the resumed learner's weights


def _core(tmp_path, *overrides, resume=False):
    from robo.config import load_config

    cfg = load_config(REACH.config_class, None, list(overrides))
    return LearnerCore(prepare(REACH, cfg, tmp_path / "run", resume=resume), resume=resume)


def _rows(n: int, success: bool) -> dict[str, np.ndarray]:
    return {"obs": np.zeros((n, 4), np.float32), "action": np.zeros((n, 2), np.float32),
            "episode_success": np.full(n, float(success), np.float32)}


def test_a_run_folder_is_never_overwritten_and_a_typo_never_starts_afresh(tmp_path):
    core = _core(tmp_path)
    core.add(_rows(5, True), {})
    core.close()
    with pytest.raises(FileExistsError, match="already holds a run"):
        _core(tmp_path)
    with pytest.raises(FileNotFoundError, match="cannot resume: .*typo/replay not found"):
        prepare(REACH, REACH.config_class(), tmp_path / "typo", resume=True)
    assert not (tmp_path / "typo").exists()
    with pytest.raises(ValueError, match="publish_every"):
        LearnerConfig(publish_every=0)


def test_learner_holds_actors_only_while_it_is_more_than_max_lead_behind(tmp_path):
    """The "hold" flag: off before the algorithm can update, on once the stored rows outrun the update
    schedule by more than `max_actor_lead`, off again when updates catch up."""
    core = _core(tmp_path, "max_actor_lead=20", "utd=2")
    try:
        core.add(_rows(30, False), {})
        assert not core.hold()  # 30 rows stored, but reach cannot update yet (no successful rows)
        for _ in range(3):  # 90 successful rows: reach updates from 64 on
            core.add(_rows(30, True), {})
        assert core.updates_owed() == 240 and core.hold()  # 120 rows, 0 updates: 120 rows ahead > 20
        while core.learner.rows_ahead() > 20:
            core.update()
        assert core.version in (199, 200) and not core.hold()  # ~100 rows' worth of updates at utd 2
    finally:
        core.close()


def test_a_bad_batch_is_refused_counted_never_stored_and_the_learner_goes_on(tmp_path):
    core = _core(tmp_path)
    learner = Learner(core, LearnerConfig(bind="tcp://127.0.0.1:*", pub="tcp://127.0.0.1:*"))
    import threading

    thread = threading.Thread(target=learner.run, daemon=True)
    thread.start()
    try:
        good = {**_rows(4, True), "policy_version": np.zeros(4, np.int64)}
        bad = [
            {**good, "extra": np.zeros((4, 1000), np.float32)},  # an unknown (1 MB-ish) array
            {k: v for k, v in good.items() if k != "action"},  # a missing key
            {**good, "obs": np.full((4, 4), np.nan, np.float32)},  # NaN
            {**good, "obs": np.zeros((4, 5), np.float32)},  # wrong width
            {**good, "episode_success": np.zeros((4, 1), np.float32)},  # wrong rank
        ]
        with RpcClient(learner.endpoint, name="fuzz", timeout_s=5.0) as client:
            for i, rows in enumerate(bad):
                with pytest.raises(RemoteError, match="bad_rows"):
                    client.call("transitions", rows, {"uid": f"bad-{i}"})
            ack = client.call("transitions", good, {"uid": "good"})
            assert ack.meta["stored"] and ack.meta["n_rows"] == 4
            assert client.ping()[1]["n_refused"] == len(bad)
        assert len(core.store) == 4  # only the good batch is stored
    finally:
        learner.stop()
        thread.join(30)
        learner.close()
    # a store that holds a bad record (written by older code) is skipped and counted on resume
    with SegmentStore(tmp_path / "run" / "replay") as store:
        store.append({**_rows(3, True), "policy_version": np.full(3, np.nan)}, {"uid": "legacy"})
    resumed = _core(tmp_path, resume=True)
    assert resumed.n_rows == 4 and resumed.state["skipped_rows"] == 3
    resumed.close()
