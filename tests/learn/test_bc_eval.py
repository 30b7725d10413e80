"""BC trains (loss falls) and `robo eval` reports success with a CI, a plot and videos."""

import json
import subprocess
import sys
from pathlib import Path

from robo.data import Dataset


def test_bc_loss_falls_and_checkpoint_complete(lift_bc):
    _, summary = lift_bc
    assert summary["loss_last50"] < 0.5 * summary["loss_first50"]
    ckpt = summary["checkpoint"]
    for name in ("config.yaml", "model.safetensors", "stats.json", "spec.json", "train_info.json"):
        assert (Path(ckpt) / name).is_file(), name
    info = json.loads((Path(ckpt) / "train_info.json").read_text())
    assert info["env_id"] == "PandaLift-v0"  # recorded in the dataset by `collect`, carried into the checkpoint


def test_demos_dataset_is_lerobot_v3(lift_bc):
    root, _ = lift_bc
    ds = Dataset(root / "demos")
    assert ds.num_episodes == 20 and ds.env_id == "PandaLift-v0"
    ep = ds.episode(0)
    assert set(ep["action_source"]) == {"scripted"}
    assert ep["next.reward"][-1] == 1.0 and ep["next.done"][-1]
    info = json.loads((root / "demos" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 20


def test_robo_eval_cli_report_plot_video(lift_bc, tmp_path):
    _, summary = lift_bc
    out = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "-m", "robo.cli", "eval", "--policy", summary["checkpoint"],
                           "--episodes", "6", "--videos", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "success" in proc.stdout and "over 6 episodes" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    res = report["results"]["base"]
    assert res["n_episodes"] == 6 and len(res["successes"]) == 6
    lo, hi = res["ci95"]
    assert 0.0 <= lo <= res["success_rate"] <= hi <= 1.0
    assert (out / "success.png").stat().st_size > 1000
    videos = list((out / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_an_episodes_outcome_depends_on_its_seed_not_on_the_batch(lift_bc):
    """Each episode's base noise comes from its own seed: 1 env at a time and 4 in one batch run the same
    episodes (the same outcomes, step for step), and the final video shows the episodes of the table."""
    from robo.learn.evaluate import evaluate
    from robo.policies import load_policy

    base = load_policy(lift_bc[1]["checkpoint"])
    one = evaluate("PandaLift-v0", base, 6, seed=30_000, n_parallel=1)
    batched = evaluate("PandaLift-v0", base, 6, seed=30_000, n_parallel=4)
    assert (one.successes, one.lengths) == (batched.successes, batched.lengths)
    other = evaluate("PandaLift-v0", base, 6, seed=40_000, n_parallel=4)
    assert other.lengths != one.lengths  # the seed does change the episodes
