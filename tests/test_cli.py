"""The `robo` command: help texts, and bad input -> one clear error line, nothing overwritten."""

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robo.data import DatasetWriter
from robo.spec import Feature, Spec


def robo(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True, timeout=timeout)


def unused_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_error_line(proc) -> str:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr  # no traceback
    return lines[0]


def tiny_dataset(root: Path, action_dim: int = 7, state_dim: int = 25) -> Path:
    spec = Spec({"observation.state": Feature((state_dim,)), "action": Feature((action_dim,))})
    w = DatasetWriter(root, spec, fps=10, task="test")
    for ep in range(2):
        for t in range(5):
            w.add_frame({"observation.state": np.full(state_dim, t, np.float32),
                         "action": np.full(action_dim, ep, np.float32), "action_source": "scripted"})
        w.save_episode(success=True)
    w.close()
    return root


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_help_lists_commands():
    proc = robo("--help")
    assert proc.returncode == 0
    for cmd in ("collect", "train", "eval", "info"):
        assert cmd in proc.stdout
    proc = robo("train", "--help")
    assert proc.returncode == 0 and "--residual" in proc.stdout


def test_unknown_command():
    proc = robo("fly")
    assert proc.returncode == 2 and "unknown command 'fly'" in proc.stderr


def test_unknown_task_id(tmp_path):
    line = one_error_line(robo("collect", "--task", "PandaNope-v0", "--episodes", "1", "--out", str(tmp_path / "d")))
    assert "unknown task id 'PandaNope-v0'" in line
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("actors", ["0", "2"])
def test_residual_unknown_task_fails_before_any_work(tmp_path, actors, monkeypatch):
    monkeypatch.setenv("ROBO_CACHE", str(tmp_path / "cache"))
    line = one_error_line(robo("train", "--residual", "--task", "PandaNope-v0", "--actors", actors,
                               "--out", str(tmp_path / "run")))
    assert "unknown task id 'PandaNope-v0'" in line and "PandaPegInsert-v0" in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # no demos recorded, no run


def test_actor_gives_up_on_an_absent_learner_with_its_address():
    port = unused_port()
    proc = robo("actor", "--learner", f"tcp://127.0.0.1:{port}", "--weights",
                f"tcp://127.0.0.1:{port}", "--learner-timeout-s", "1.5", timeout=60)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and f"learner at tcp://127.0.0.1:{port} unreachable" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "OpenGL" not in proc.stderr


def test_eval_of_an_absent_policy_server(tmp_path):
    port = unused_port()
    line = one_error_line(robo("eval", "--policy", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "ev")))
    assert f"no policy server answers at tcp://127.0.0.1:{port}" in line
    assert not (tmp_path / "ev").exists()


def test_missing_dataset_dir(tmp_path):
    line = one_error_line(robo("train", "bc", "--data", str(tmp_path / "nope")))
    assert "not found" in line and "nope" in line


def test_bad_config_key_and_value(tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    line = one_error_line(robo("train", "bc", "--data", str(ds), "stepz=3"))
    assert "unknown config key 'stepz'" in line
    line = one_error_line(robo("train", "bc", "--data", str(ds), "policy.horizon=abc"))
    assert "'policy.horizon' must be an integer" in line
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("policy:\n  horizon: [1,\n")
    line = one_error_line(robo("train", "bc", "--data", str(ds), "--config", str(bad_yaml)))
    assert "bad.yaml" in line


def test_corrupt_parquet_one_line_and_untouched(tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    victim = next((ds / "data").rglob("*.parquet"))
    victim.write_bytes(b"PAR1 this is not parquet")
    before = digest(ds)
    line = one_error_line(robo("train", "bc", "--data", str(ds), "steps=1"))
    assert victim.name in line
    assert digest(ds) == before


@pytest.mark.parametrize("cmd", [["eval", "--policy"], ["train", "--residual", "--base"]])
def test_missing_checkpoint(tmp_path, cmd):
    line = one_error_line(robo(*cmd, str(tmp_path / "ckpt")))
    assert "not found" in line


@pytest.mark.parametrize("cmd", [["train", "--residual", "--base", "nowhere"], ["train", "bc", "--data", "."]])
def test_existing_run_folder_is_refused_and_untouched(tmp_path, cmd):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("results of an earlier run")
    line = one_error_line(robo(*cmd, "--out", str(run)))
    assert "already exists" in line and str(run) in line
    assert [p.name for p in run.iterdir()] == ["keep.txt"] and (run / "keep.txt").read_text().startswith("results")
