"""Test-wide settings (headless rendering, a private cache, few torch threads for 2-core CI machines) and the
shared lift fixture: scripted lift demos + a small flow BC base, built once per session."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

# torch threads per test process: the cores shared by the xdist workers (`-n 2` on a 2-core CI machine: one each)
torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


@pytest.fixture(scope="session", autouse=True)
def _robo_cache(tmp_path_factory):
    """Keep `robo` caches (default demos/base) and machine-wide runtime state (leases) inside the test
    session, never in ~/.cache or /tmp/robo: parallel test workers must not lease each other's sim arms."""
    os.environ["ROBO_CACHE"] = str(tmp_path_factory.mktemp("robo_cache"))
    os.environ["ROBO_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("robo_runtime"))
    yield


LIFT = "PandaLift-v0"


@pytest.fixture(scope="session")
def lift_bc(tmp_path_factory):
    """(root, BC summary) for 20 noise-free lift demos and a 600-step flow-MLP BC base (~35% success:
    under-trained on purpose, so residual RL has room to lift it)."""
    from robo.learn.bc import BCTrainConfig, train_bc
    from robo.learn.demos import collect_scripted
    from robo.policies import make_config

    root = tmp_path_factory.mktemp("lift")
    collect_scripted(LIFT, root / "demos", episodes=20, noise=0.0, seed=0)
    cfg = BCTrainConfig(data=str(root / "demos"), steps=600, batch_size=64, torch_threads=1)
    summary = train_bc(cfg, "flow", make_config("flow", None, ["backbone=mlp", "mlp_dims=[256,256,256]"]),
                       root / "bc")
    return root, summary


@pytest.fixture(scope="session")
def lift_residual_config(lift_bc, tmp_path_factory):
    """One YAML config of the lift learning tests, used by the embedded loop and by the learner + actor
    processes alike (tests/learn/test_residual_learning.py, tests/runtime/test_runtime_residual_async.py)."""
    import yaml

    root, summary = lift_bc
    path = tmp_path_factory.mktemp("lift_cfg") / "lift_residual.yaml"
    path.write_text(yaml.safe_dump({
        "task": LIFT, "base": str(summary["checkpoint"]), "demos": str(root / "demos"), "total_env_steps": 12000,
        "actor_hidden": 128, "critic_hidden": 128, "num_q": 4, "utd": 1, "batch_size": 128, "actor_lr": 1e-4,
        "critic_lr": 3e-4, "residual_penalty": 0.1, "explore_std": 0.1, "action_scale": 0.2, "learning_starts": 500,
        "critic_warmup_updates": 1000, "eval_every": 6000, "eval_episodes": 10, "final_eval_episodes": 10,
        "final_videos": 0, "checkpoint_every": 4000, "torch_threads": 1, "buffer_size": 20000, "device": "cpu",
        "max_actor_lead": 200,
    }))
    return path


# The longest test files start first, so two xdist workers (`--dist loadfile`, README) do not end on one
# of them alone; the rest keep their order. A file missing here only starts later.
LONGEST_FIRST = (
    "learn/test_residual_learning.py",
    "learn/test_reinflow.py",
    "runtime/test_runtime_residual_async.py",
    "cluster/test_ray_placement.py",
    "learn/test_rl100.py",
    "cells/test_eval_train.py",
    "learn/test_distill.py",
    "hil/test_rounds.py",
    "runtime/test_runtime_actor_learner.py",
    "sim/test_plugin_cli.py",
    "runtime/test_runtime_serving.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0].removeprefix("tests/")
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: a file's tests stay together and in their order
