"""Test-wide settings: headless rendering, a private cache, few torch threads (2-core CI machines)."""

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
