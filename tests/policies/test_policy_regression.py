"""Stored-output regression test: fixed-seed tiny policies must reproduce the outputs saved in
tests/policies/data/regression.npz, so numerics (normalisation, U-Net, samplers) never drift silently.

After an intended numerical change, regenerate and commit the file with a note:

    ROBO_REGEN_POLICY_DATA=1 python -m pytest tests/policies/test_policy_regression.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from policy_fixtures import make_obs, make_spec, make_stats, tiny_config

from robo.policies import make_policy

DATA = Path(__file__).parent / "data" / "regression.npz"
CAMS = ("front",)
CASES = {
    "diffusion": {"prediction_type": "epsilon"},
    "diffusion_ddpm_sample": {"sampler": "ddpm", "prediction_type": "sample", "num_inference_steps": 5},
    "flow": {},
    "flow_k1": {"num_inference_steps": 1},
}


def outputs() -> dict[str, np.ndarray]:
    out = {}
    obs = make_obs(2, CAMS, seed=7, image_size=16)
    rng = np.random.default_rng(8)
    batch = {k: torch.from_numpy(v) for k, v in obs.items()}
    batch["action"] = torch.from_numpy(rng.uniform(-2, 2, (2, 8, 2)).astype(np.float32))
    batch["action_is_pad"] = torch.from_numpy(np.arange(8)[None].repeat(2, 0) >= 6)
    for case, kw in CASES.items():
        name = case.split("_")[0]
        torch.manual_seed(0)
        p = make_policy(name, tiny_config(name, **kw), make_spec(CAMS, image_size=16), make_stats())
        out[f"{case}/chunk"] = p.predict_chunk(obs, seed=0).numpy()
        out[f"{case}/loss"] = np.array(p.compute_loss(batch, generator=torch.Generator().manual_seed(0)).item())
    return out


def test_outputs_match_stored_regression_data():
    got = outputs()
    if os.environ.get("ROBO_REGEN_POLICY_DATA"):
        DATA.parent.mkdir(parents=True, exist_ok=True)
        np.savez(DATA, **got)
    if not DATA.is_file():
        pytest.fail(f"{DATA} is missing; regenerate with ROBO_REGEN_POLICY_DATA=1 (see module docstring)")
    want = np.load(DATA)
    assert sorted(want.files) == sorted(got)
    for key, value in got.items():
        # 1e-5: float32 reductions may reorder across CPUs/thread counts; real drift is far larger.
        np.testing.assert_allclose(value, want[key], rtol=1e-4, atol=1e-5, err_msg=key)
