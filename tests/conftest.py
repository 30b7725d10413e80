"""Test-wide settings (headless rendering, a private cache, few torch threads for 2-core CI machines) and the
shared lift fixture: scripted lift demos + a small flow BC base, built once per session."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _robo_cache(tmp_path_factory):
    """Keep `robo` caches (default demos/base) inside the test session, never in ~/.cache."""
    os.environ["ROBO_CACHE"] = str(tmp_path_factory.mktemp("robo_cache"))
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
