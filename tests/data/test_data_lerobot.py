"""robo reads what LeRobot 0.4 itself writes (fixture made by scripts/lerobot_fixture.py, see there).

`lerobot_v30_reference.npz` holds what LeRobot's own loader returned for the fixture (values, images
decoded by torchcodec, task text, `delta_timestamps` windows); robo's reader must return the same. The
reverse direction (LeRobot reading robo's datasets) is `scripts/check_lerobot.py`, run in the LeRobot
environment of `scripts/lerobot_env.sh` (LeRobot cannot share robo's environment: see that script).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from robo.data import Dataset, DatasetError, DatasetWriter

FIXTURES = Path(__file__).parent / "fixtures"
LEROBOT = FIXTURES / "lerobot_v30"
CAMERAS = ("observation.images.front", "observation.images.wrist")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "lerobot_v30_reference.npz") as z:
        return {k: z[k] for k in z.files}


def all_frames(ds: Dataset) -> dict[str, np.ndarray]:
    return {k: np.concatenate([ds.episode(i)[k] for i in range(ds.num_episodes)]) for k in ds.columns}


def test_fixture_is_lerobots_layout() -> None:
    """What the fixture exercises: several episodes per file, AV1, LeRobot's tasks file."""
    info = json.loads((LEROBOT / "meta" / "info.json").read_text())
    assert "robo" not in info and info["codebase_version"] == "v3.0"
    assert {info["features"][k]["info"]["video.codec"] for k in CAMERAS} == {"av1"}
    eps = pq.read_table(LEROBOT / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(r["data/file_index"], r[f"videos/{CAMERAS[0]}/file_index"]) for r in eps] == [(0, 0)] * 3
    assert [r[f"videos/{CAMERAS[0]}/from_timestamp"] for r in eps] == pytest.approx([0.0, 0.7, 1.7])
    tasks = pq.read_table(LEROBOT / "meta" / "tasks.parquet")
    assert "task" not in tasks.column_names  # the text is the pandas index, `__index_level_0__`


def test_reads_every_value_as_lerobot_does(ref: dict[str, np.ndarray]) -> None:
    ds = Dataset(LEROBOT)
    assert ds.num_episodes == 3 and ds.num_frames == 22 and list(ds.episode_lengths) == [7, 10, 5]
    assert ds.tasks == ["pick up the cube", "put the cube down"] and ds.schema_version is None
    assert ds.spec["observation.images.front"].shape == (24, 32, 3)
    frames = all_frames(ds)
    for key in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index",
                "task_index", *CAMERAS):
        np.testing.assert_array_equal(frames[key], ref[key].reshape(frames[key].shape), err_msg=key)
        assert frames[key].dtype == ref[key].dtype, key
    assert [ds.tasks[i] for i in frames["task_index"]] == [str(t) for t in ref["task"]]


def test_windows_equal_lerobots_delta_timestamps(ref: dict[str, np.ndarray]) -> None:
    """robo's windows(To=2, T=4) == LeRobot's delta_timestamps state [-0.1, 0], action [-0.1 .. 0.2]."""
    win = Dataset(LEROBOT).windows(n_obs_steps=2, horizon=4)
    assert len(win) == len(ref["window/action"])
    for i in range(len(win)):
        np.testing.assert_array_equal(win[i]["observation.state"], ref["window/observation.state"][i])
        np.testing.assert_array_equal(win[i]["action"], ref["window/action"][i])
        np.testing.assert_array_equal(win[i]["action_is_pad"], ref["window/action_is_pad"][i])


def test_stats_equal_lerobots_stats_json() -> None:
    """Merged from LeRobot's per-episode rows, robo's stats equal the stats.json LeRobot aggregated."""
    on_disk = json.loads((LEROBOT / "meta" / "stats.json").read_text())
    stats = Dataset(LEROBOT).stats
    assert set(stats) == set(on_disk)
    for key, d in on_disk.items():
        assert set(stats[key]) == set(d), key
        for name, value in d.items():
            np.testing.assert_allclose(stats[key][name], value, rtol=1e-7, atol=1e-12, err_msg=f"{key}.{name}")


def test_bc_policy_learns_from_a_lerobot_dataset() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and it does not fight other jobs
    try:
        _learn_from_lerobot_dataset()
    finally:
        torch.set_num_threads(threads)


def _learn_from_lerobot_dataset() -> None:
    from robo.policies import make_policy
    from robo.policies.flow.config import FlowConfig

    torch.manual_seed(0)
    ds = Dataset(LEROBOT)
    cfg = FlowConfig(backbone="mlp", n_obs_steps=2, horizon=4, n_action_steps=2, mlp_dims=(64, 64),
                     image_channels=8, n_groups=4, image_feat_dim=16, num_keypoints=8, state_feat_dim=16,
                     time_embed_dim=16)
    policy = make_policy("flow", cfg, ds.spec, ds.stats)  # LeRobot's (3, 1, 1) image stats, its quantiles
    win = ds.windows(cfg.n_obs_steps, cfg.horizon)
    batch = {k: torch.as_tensor(np.stack([win[i][k] for i in range(len(win))])) for k in win[0]}
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        torch.manual_seed(step % 4)  # the same few noise draws: overfitting 22 windows must work
        loss = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5]), losses
    policy.eval()
    obs = {k: torch.as_tensor(v[None]) for k, v in win[5].items() if k not in ("action", "action_is_pad")}
    assert policy.predict_chunk(obs).shape == (1, 3, 3)


def test_writer_refuses_to_append_to_a_lerobot_dataset(tmp_path: Path) -> None:
    root = tmp_path / "lerobot"
    shutil.copytree(LEROBOT, root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    spec = Dataset(root).spec
    with pytest.raises(DatasetError, match=r"written by another writer .*record into a new folder"):
        DatasetWriter(root, spec, fps=10, task="more", robot_type="panda")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".writer.lock"} == before
