"""The README's main job, `robo train --residual`, end to end from the command line on a tiny budget:
the embedded default (scripted demos -> BC base, cached) -> residual TD3 -> report, plots and video."""

import json
import os
import shlex
import subprocess
import sys

import av
import pytest
import torch

TINY = ["task=PandaLift-v0", "default_base.demo_episodes=4", "default_base.bc_steps=50", "total_env_steps=300",
        "n_envs=2", "learning_starts=100", "critic_warmup_updates=10", "batch_size=32", "actor_hidden=32",
        "critic_hidden=32", "num_q=2", "utd=1", "eval_every=10000", "eval_episodes=2", "final_eval_episodes=3",
        "checkpoint_every=10000", "device=cpu", "torch_threads=1"]


def robo(*args: str, cwd, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROBO_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "robo.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("main_job")
    proc = robo("train", "--residual", "--out", "runs/first", *TINY, "final_videos=2", cwd=root, cache=root / "cache")
    return root, proc


def test_the_default_base_is_made_then_the_run_reports_plots_and_video(first_run):
    root, proc = first_run
    run = root / "runs" / "first"
    assert "[default base] recording 4 scripted demos of PandaLift-v0" in proc.stdout
    assert "[default base] training a flow BC base" in proc.stdout
    assert "final evaluation on PandaLift-v0, 3 episodes, seeds 10000..10002" in proc.stdout
    report = json.loads((run / "report.json").read_text())
    assert report["algo"] == "td3" and report["env_steps"] >= 300
    assert {len(report["results"][k]["successes"]) for k in ("base", "residual")} == {3}
    for plot in ("learning_curve.png", "final_eval.png"):
        assert (run / plot).stat().st_size > 1000

    # the video: a 2-seed grid, base | base + residual, 224 px cells under a 36 px caption
    with av.open(str(run / "base_vs_residual.mp4")) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert frames[0].shape == (2 * (224 + 36), 2 * 224 + 4, 3)
    assert len(frames) > 10 and frames[0].std() > 10  # rendered scenes, not blank frames

    md = (run / "results.md").read_text()
    assert md.startswith("# Residual TD3 on PandaLift-v0")
    assert "base + residual" in md and "base_vs_residual.mp4" in md and "learning_curve.png" in md


def test_results_md_command_evaluates_the_run_and_a_second_run_reuses_the_cached_base(first_run):
    root, _ = first_run
    md = (root / "runs" / "first" / "results.md").read_text()
    (command,) = [line for line in md.splitlines() if line.startswith("robo eval ")]
    proc = robo(*shlex.split(command)[1:], "--episodes", "2", "--videos", "0", "--out", "runs/eval", cwd=root,
                cache=root / "cache")
    assert "base+residual on PandaLift-v0: success" in proc.stdout
    assert json.loads((root / "runs/eval/report.json").read_text())["residual"] == "runs/first"

    again = robo("train", "--residual", "--out", "runs/second", *TINY, "final_videos=0", cwd=root,
                 cache=root / "cache")
    assert "[default base]" not in again.stdout  # demos and base came from the cache
    assert not (root / "runs/second/base_vs_residual.mp4").exists()
    assert "base_vs_residual.mp4" not in (root / "runs/second/results.md").read_text()
    # the same command learns the same residual whether its base was made in this run or read from the cache
    first, second = (torch.load(root / "runs" / r / "residual_actor.pt", weights_only=False)["actor"]
                     for r in ("first", "second"))
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("algo", ["td3", "ppo", "sac"])
def test_robo_eval_residual_reads_any_algorithms_run(algo, lift_bc, tmp_path):
    """`robo eval --residual <run>` picks the loader from the run record: TD3 and PPO runs on top of the
    base they were trained on (found in the record), a SAC run on its own."""
    from robo.cli import main
    from robo.learn.algo import get_algorithm, load_rl_config
    from robo.learn.spine import train

    root, summary = lift_bc
    tiny = {"td3": ["actor_hidden=16", "critic_hidden=16", "num_q=2", "batch_size=16", "learning_starts=50",
                    "critic_warmup_updates=10", f"base={summary['checkpoint']}", f"demos={root / 'demos'}"],
            "ppo": ["n_envs=2", "rollout_steps=50", "n_minibatches=2", "update_epochs=1", "hidden=16",
                    f"base={summary['checkpoint']}"],
            "sac": ["hidden=16", "num_q=2", "batch_size=16", "learning_starts=50", "base=none",
                    f"demos={root / 'demos'}"]}[algo]
    a = get_algorithm(algo)
    cfg = load_rl_config(a, None, ["task=PandaLift-v0", "total_env_steps=100", "eval_episodes=1", "eval_every=1000",
                                   "final_eval_episodes=1", "final_videos=0", "device=cpu", "torch_threads=1", *tiny],
                         profile="cpu")
    train(a, cfg, tmp_path / "run", report=False)
    out = tmp_path / "eval"
    assert main(["eval", "--residual", str(tmp_path / "run"), "--episodes", "2", "--videos", "0",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    label = "base+residual" if algo != "sac" else "sac"
    assert list(report["results"]) == [label] and len(report["results"][label]["successes"]) == 2
    assert report["checkpoint"] == (str(summary["checkpoint"]) if algo != "sac" else None)
