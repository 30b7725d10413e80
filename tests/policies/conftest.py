"""Policy-test fixtures; helpers live in policy_fixtures.py (a unique module name, importable from tests)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """1 torch thread per policy test (2 shared cores); the session's setting is restored after."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(params=["diffusion", "flow"])
def name(request) -> str:
    return request.param
