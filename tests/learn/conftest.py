"""Shared fixture: scripted lift demos + a small flow BC base trained on them (built once per session)."""

import pytest

from robo.learn.bc import BCTrainConfig, train_bc
from robo.learn.demos import collect_scripted
from robo.policies import make_config

LIFT = "PandaLift-v0"


@pytest.fixture(scope="session")
def lift_bc(tmp_path_factory):
    """(root, BC summary) for 20 noise-free lift demos and a 600-step flow-MLP BC base."""
    root = tmp_path_factory.mktemp("lift")
    collect_scripted(LIFT, root / "demos", episodes=20, noise=0.0, seed=0)
    cfg = BCTrainConfig(data=str(root / "demos"), steps=600, batch_size=64, torch_threads=1)
    summary = train_bc(cfg, "flow", make_config("flow", None, ["backbone=mlp", "mlp_dims=[256,256,256]"]),
                       root / "bc")
    return root, summary
