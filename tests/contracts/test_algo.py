"""Conformance of every registered RL algorithm with the contract in robo.learn.algo.

Subclass `AlgoContract` with the algorithm's name and overrides that make it tiny; the checks run on
`RoboTest/ReachFast-v0` (tests/runtime/reach_algo.py), a point-reach task that steps in microseconds,
so they are about the algorithm's plumbing, not its learning (learning tests live in tests/learn):

- its config round-trips through YAML and names a bad value in one line;
- a run saves its policy, `load_run` finds the right loader from the run record, and a resumed run
  continues from its stored rows on the same schedule;
- a residual algorithm starts exactly at the base (zero residual at initialisation);
- the update-to-data schedule: after N stored rows exactly `schedule.due(N)` updates (utd x N for an
  off-policy learner without warm-up), the same in one process and through a learner process + an
  actor process started from one config file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robo.config import ConfigError, load_config, save_config
from robo.learn.algo import ALGORITHMS, get_algorithm, load_run, read_run_record
from robo.learn.spine import LearnerCore, prepare, train
from robo.runtime.launch import launch_local

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
sys.path.insert(0, str(RUNTIME))
import reach_algo  # noqa: E402,F401  (registers RoboTest/ReachFast-v0)

pytestmark = pytest.mark.timeout(300)
COMMON = ["task=RoboTest/ReachFast-v0", "base=none", "eval_every=100000", "eval_episodes=2",
          "final_eval_episodes=2", "final_videos=0", "checkpoint_every=100000", "device=cpu", "torch_threads=1"]


def _counters(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint" / "state.pt", weights_only=False)["counters"]


class AlgoContract:
    name: str
    overrides: list[str]
    rows: int = 400
    """Rows of the tiny runs."""

    def cfg(self, *more: str):
        return load_config(get_algorithm(self.name).config_class, None, COMMON + self.overrides + list(more))

    def test_registered_and_config_round_trips(self, tmp_path):
        algo = get_algorithm(self.name)
        assert algo.name == self.name and ALGORITHMS[self.name]
        cfg = self.cfg()
        save_config(cfg, tmp_path / "c.yaml")
        assert load_config(algo.config_class, tmp_path / "c.yaml") == cfg
        with pytest.raises(ConfigError, match="total_env_steps"):
            load_config(algo.config_class, None, ["total_env_steps=0"])

    def test_starts_at_the_base_when_residual(self, tmp_path):
        algo = get_algorithm(self.name)
        setup = prepare(algo, self.cfg(), tmp_path / "run")
        learner = algo.learner(setup)
        _, fn = learner.eval_policy()
        obs = np.random.default_rng(0).normal(size=(5, setup.env_info.obs_dim)).astype(np.float32)
        out = fn(obs, np.zeros((5, setup.env_info.act_dim), np.float32))
        assert out.shape == (5, setup.env_info.act_dim) and np.isfinite(out).all()
        if algo.residual:
            assert np.array_equal(out, np.zeros_like(out))  # base + residual == base at initialisation
        setup.view.close()

    def test_run_saves_loads_and_resumes_on_the_same_schedule(self, tmp_path):
        algo = get_algorithm(self.name)
        run = tmp_path / "run"
        state = train(algo, self.cfg(f"total_env_steps={self.rows}"), run, report=False)
        assert read_run_record(run)["algorithm"] == self.name
        loaded = load_run(run)
        assert loaded.algo.name == self.name and loaded.task == "RoboTest/ReachFast-v0"
        assert loaded.residual(np.zeros((2, 4), np.float32), np.zeros((2, 2), np.float32)).shape == (2, 2)
        resumed = train(algo, load_config(algo.config_class, run / "config.yaml", [f"total_env_steps={2 * self.rows}"]),
                        run, resume=True, report=False)
        assert resumed["n_rows"] >= 2 * self.rows and resumed["updates"] > state["updates"]
        core = LearnerCore(prepare(algo, self.cfg(), run, resume=True), resume=True)
        assert core.learner.updates_owed() == 0 and core.version == resumed["updates"]  # no update owed or lost
        core.close()

    def test_schedule_is_the_same_in_one_process_and_across_processes(self, tmp_path, monkeypatch):
        algo = get_algorithm(self.name)
        cfg = self.cfg(f"total_env_steps={self.rows}")
        path = tmp_path / "cfg.yaml"
        save_config(cfg, path)
        embedded = train(algo, load_config(algo.config_class, path), tmp_path / "embedded", report=False)
        # the learner and actor processes register the test task at start (until tasks are plug-ins)
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "sitecustomize.py").write_text("import reach_algo  # noqa: F401\n")
        paths = [str(tmp_path / "site"), str(RUNTIME), os.environ.get("PYTHONPATH", "")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
        assert launch_local(self.name, path, 1, tmp_path / "processes", timeout_s=200) == 0
        across = _counters(tmp_path / "processes")
        for run, counters in (("embedded", embedded), ("processes", across)):
            resolved = yaml.safe_load((tmp_path / run / "config.yaml").read_text())
            assert resolved == yaml.safe_load(path.read_text())  # one config, resolved the same in both
            core = LearnerCore(prepare(algo, load_config(algo.config_class, path), tmp_path / run, resume=True),
                               resume=True)
            expected = core.learner.schedule.due(counters["n_rows"])
            core.close()
            assert counters["updates"] == expected, (run, counters["n_rows"], counters["updates"])


class TestTD3(AlgoContract):
    name = "td3"
    overrides = ["actor_hidden=16", "critic_hidden=16", "num_q=2", "batch_size=16", "learning_starts=0",
                 "critic_warmup_updates=10", "utd=2", "buffer_size=2000", "frozen_action_dims=[]"]

    def test_utd_times_rows_without_warm_up(self, tmp_path):
        state = train(get_algorithm("td3"), self.cfg("total_env_steps=200"), tmp_path / "run", report=False)
        assert state["updates"] == 2 * state["n_rows"]  # utd x N after N stored transitions


class TestPPO(AlgoContract):
    name = "ppo"
    overrides = ["n_envs=2", "rollout_steps=50", "n_minibatches=2", "update_epochs=1", "hidden=16"]


class TestSAC(AlgoContract):
    name = "sac"
    overrides = ["hidden=16", "num_q=2", "batch_size=16", "learning_starts=50", "utd=1", "buffer_size=2000"]
