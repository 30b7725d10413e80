"""A newcomer's first hour (issue 23): help that lists config keys, BC that survives Ctrl-C and resumes,
late failures caught at start, appends that never re-record the same episodes, damaged files named in
one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robo.learn.demos import collect_scripted, used_seeds


def robo(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    return lines[0]


def test_version_and_help_that_lists_the_config_keys():
    assert robo("--version").stdout.startswith("robo 0.")
    rl = robo("train", "--residual", "--help").stdout
    assert "config keys (cpu profile defaults)" in rl or "config keys (gpu profile defaults)" in rl
    assert "critic_hidden = " in rl and "Hidden width of each critic head." in rl  # key, default and docstring
    assert "default_base.bc_steps = " in rl  # nested keys too
    ppo = robo("train", "--algo", "ppo", "--help").stdout
    assert "rollout_steps = 128" in ppo and "critic_hidden" not in ppo  # the chosen algorithm's keys
    bc = robo("train", "bc", "--help").stdout
    assert "robo train bc config keys" in bc and "checkpoint_every = 1000" in bc and "policy.* keys (flow)" in bc
    assert "{scripted,keyboard,gamepad,spacemouse,leader,leader_arm}" in robo("collect", "--help").stdout


def test_every_option_of_every_command_says_what_it_does():
    import argparse
    import importlib

    from robo.cli import COMMANDS

    for name, module in COMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module).add_arguments(parser)
        undocumented = [a.option_strings or a.dest for a in parser._actions if not a.help]
        assert not undocumented, (name, undocumented)


def test_print_config_resolves_without_running(tmp_path):
    out = robo("train", "--residual", "--print-config", "total_env_steps=123", "--config", "residual_td3_cpu",
               cwd=tmp_path)  # a packaged config by name, from a folder outside the repository
    assert out.returncode == 0, out.stderr
    assert "total_env_steps: 123" in out.stdout and "critic_hidden: 128" in out.stdout
    bc = robo("train", "bc", "--print-config", "--config", "configs/train/bc_diffusion.yaml", cwd=tmp_path)
    assert bc.returncode == 0, bc.stderr
    assert "name: diffusion" in bc.stdout and "prediction_type: sample" in bc.stdout
    assert not any(tmp_path.iterdir())  # nothing was run or written


def test_late_failures_are_caught_at_start(tmp_path, lift_bc):
    root, _ = lift_bc
    line = one_error_line(robo("train", "bc", "--data", str(root / "demos"), "--task", "PandaFoo-v0",
                               "--out", str(tmp_path / "bc")))
    assert "PandaFoo-v0" in line and not (tmp_path / "bc").exists()
    line = one_error_line(robo("collect", "--task", "PandaLift-v0", "--noise", "-1", "--out", str(tmp_path / "d")))
    assert "--noise" in line and not (tmp_path / "d").exists()  # refused before anything is written
    line = one_error_line(robo("eval", "--policy", str(root / "bc"), "--videos", "-1"))
    assert "--videos" in line


def test_appending_continues_the_seeds_and_refuses_a_used_one(tmp_path):
    out = tmp_path / "demos"
    collect_scripted("PandaLift-v0", out, 2, seed=0)
    first = used_seeds(out)
    proc = robo("collect", "--task", "PandaLift-v0", "--episodes", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    ranges = used_seeds(out)
    assert ranges[0] == first[0] and ranges[1][0] == first[0][1] + 1  # continued after the seeds used
    line = one_error_line(robo("collect", "--task", "PandaLift-v0", "--episodes", "1", "--out", str(out),
                               "--seed", "1"))
    assert "seeds 0..1 are recorded already" in line


@pytest.mark.timeout(600)  # with the lift fixture when this test runs first
def test_bc_survives_ctrl_c_and_resumes(tmp_path, lift_bc):
    root, _ = lift_bc
    run = tmp_path / "bc"
    cmd = [sys.executable, "-m", "robo.cli", "train", "bc", "--data", str(root / "demos"), "--out", str(run),
           "steps=400", "checkpoint_every=100000", "torch_threads=1", "policy.mlp_dims=[64,64]"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 200
    while not (run / "scalars.csv").is_file() or len((run / "scalars.csv").read_text().splitlines()) < 5:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "continue with: robo train bc --resume" in out
    state = torch.load(run / "resume" / "state.pt", weights_only=False)
    stopped = state["done"]["step"]
    assert 0 < stopped < 400 and json.loads((run / "checkpoint" / "train_info.json").read_text())["steps"] == stopped
    from robo.policies import load_policy

    load_policy(run / "checkpoint")  # the interrupted run left a usable policy
    same = robo("train", "bc", "--data", str(root / "demos"), "--out", str(run))
    assert "already exists" in one_error_line(same)  # never overwritten
    resumed = robo("train", "bc", "--resume", str(run), timeout=280)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {run} at step {stopped}/400" in resumed.stdout
    assert json.loads((run / "checkpoint" / "train_info.json").read_text())["steps"] == 400


def test_damaged_run_files_are_named_in_one_line(tmp_path, lift_bc):
    from robo.learn.residual_td3 import ALGORITHM, ResidualTD3Config
    from robo.learn.spine import train

    root, summary = lift_bc
    run = tmp_path / "run"
    train(ALGORITHM, ResidualTD3Config(task="PandaLift-v0", base=summary["checkpoint"], total_env_steps=60,
                                       learning_starts=20, critic_warmup_updates=5, actor_hidden=16,
                                       critic_hidden=16, num_q=2, batch_size=16, eval_episodes=1,
                                       final_eval_episodes=1, final_videos=0, device="cpu", torch_threads=1),
          run, report=False)
    for name in ("residual_actor.pt", "checkpoint/state.pt", "run.json", "feature_stats.json"):
        path = run / name
        good = path.read_bytes()
        path.write_bytes(good[: len(good) // 2])  # truncated, as by a full disk or a killed copy
        args = ("train", "--residual", "--resume", str(run)) if "state" in name else \
            ("eval", "--residual", str(run), "--episodes", "1", "--videos", "0")
        line = one_error_line(robo(*args))
        assert str(path) in line, (name, line)
        path.write_bytes(good)
    assert os.path.getsize(run / "residual_actor.pt") > 0
