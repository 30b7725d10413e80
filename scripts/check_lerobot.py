"""Maintainer's check of robo's datasets against LeRobot 0.4's own code, both directions.

    bash scripts/lerobot_env.sh                      # once: .venv-lerobot (LeRobot cannot share robo's env)
    .venv-lerobot/bin/python scripts/check_lerobot.py [--keep DIR]

robo -> LeRobot: robo's DatasetWriter records 3 episodes (state, action, a 24 x 32 camera, every robo
column, residual frames with a base action, two tasks); then LeRobot's `LeRobotDataset` must return every
value robo's reader returns, bit for bit, images included; `item["task"]` must be the text and
`meta.get_task_index(text)` its index; a torch DataLoader must collate every batch; only `action` may be
an action feature; `aggregate_stats` must accept the stats (dataset's and per episode's) and agree with
them; the normaliser must accept them in every mode (MEAN_STD on a (B, 3, H, W) image, MIN_MAX,
QUANTILES, QUANTILE10) and give the values the stats imply; `delta_timestamps` windows must equal
robo's `windows()`.

LeRobot -> robo: LeRobot writes the dataset of scripts/lerobot_fixture.py into a temporary folder and
robo's reader must return what LeRobot's loader returns (the committed fixture's CI test, re-run against
what this LeRobot writes now).

Prints one line per check; exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from lerobot_common import import_lerobot, lerobot_version

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local

REPO_ID = "robo/check"
CAM = "observation.images.front"
LENGTHS = (6, 9, 4)
TASKS = ("insert the peg", "lift the cube", "insert the peg")
SOURCES = ("scripted", "policy", "residual", "human")


def write_with_robo(root: Path) -> None:
    from robo.data import DatasetWriter
    from robo.spec import Feature, Spec

    spec = Spec({
        "observation.state": Feature((5,), names=tuple(f"s{j}" for j in range(5))),
        CAM: Feature((24, 32, 3), "uint8", ("height", "width", "channel")),
        "action": Feature((3,), names=("dx", "dy", "dz"), low=(-1.0,) * 3, high=(1.0,) * 3),
    })
    with DatasetWriter(root, spec, fps=10, task=TASKS[0], robot_type="panda", env_id="PandaPegInsert-v0") as w:
        for e, n in enumerate(LENGTHS):
            for t in range(n):
                y, x = np.mgrid[0:24, 0:32]
                img = np.stack([20 * e + 9 * t + 0 * x, 7 * x + 0 * y, 9 * y + 20], axis=-1).astype(np.uint8)
                source = SOURCES[(e + t) % 4]
                w.add_frame({
                    "observation.state": np.array([e, t, e * t, 0.1 * t, -0.5], np.float32),
                    CAM: img,
                    "action": np.array([0.05 * t, -0.03 * e, 0.01 * e * t], np.float32),
                    "action_source": source,
                    "base_action": np.array([0.1, 0.2, 0.3 * t], np.float32) if source == "residual" else None,
                    "intervention": source == "human",
                    "policy_version": 100 * e + t,
                    "next.reward": float(t == n - 1),
                    "capture_timestamp": 1.7e9 + 10 * e + 0.1 * t,
                })
            w.save_episode(success=True, task=TASKS[e])


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, name: str, fn: Callable[[], str | None]) -> None:
        try:
            detail = fn()
            print(f"ok    {name}" + (f": {detail}" if detail else ""))
        except Exception as e:  # noqa: BLE001 - report every check, then exit 1
            self.failed.append(name)
            print(f"FAIL  {name}: {type(e).__name__}: {' '.join(str(e).split())[:400]}")
            if os.environ.get("ROBO_CHECK_DEBUG"):
                traceback.print_exc()


def check_robo_to_lerobot(root: Path, check: Checks) -> None:
    import torch
    from lerobot.configs.types import FeatureType, NormalizationMode
    from lerobot.datasets.compute_stats import aggregate_stats
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.utils import dataset_to_policy_features
    from lerobot.processor.converters import batch_to_transition
    from lerobot.processor.core import TransitionKey
    from lerobot.processor.normalize_processor import NormalizerProcessorStep

    from robo.data import Dataset
    from robo.data.format import STORED_NAMES, ns_to_seconds

    write_with_robo(root)
    ours = Dataset(root)
    frames = {k: np.concatenate([ours.episode(i)[k] for i in range(ours.num_episodes)]) for k in ours.columns}
    theirs = LeRobotDataset(REPO_ID, root=root)

    def values() -> str:
        assert len(theirs) == ours.num_frames and theirs.num_episodes == ours.num_episodes
        stored = STORED_NAMES
        for i in range(len(theirs)):
            item = theirs[i]
            for key in frames:
                got = item[stored.get(key, key)]
                if key == "capture_timestamp":  # stored as int64 ns (LeRobot makes float64 columns float32)
                    got = ns_to_seconds(got.numpy())
                if key == CAM:  # LeRobot: float (3, H, W) = uint8 / 255
                    got = (got.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                elif key == "action_source":
                    assert got == frames[key][i], (i, key, got)
                    continue
                got = np.asarray(got).reshape(frames[key][i].shape)
                np.testing.assert_array_equal(got, frames[key][i], err_msg=f"frame {i} {key}")
        return f"{len(theirs)} frames x {len(frames)} columns equal, images included"

    def tasks() -> str:
        for i in range(len(theirs)):
            assert theirs[i]["task"] == TASKS[int(frames["episode_index"][i])], (i, theirs[i]["task"])
        indices = {t: theirs.meta.get_task_index(t) for t in dict.fromkeys(TASKS)}
        assert indices == {"insert the peg": 0, "lift the cube": 1}, indices
        return f"item['task'] is the text; get_task_index: {indices}"

    def collate() -> str:
        loader = torch.utils.data.DataLoader(theirs, batch_size=4, shuffle=True)
        n = 0
        for batch in loader:
            n += 1
            assert batch[CAM].shape[1:] == (3, 24, 32) and batch["robo.base_action"].dtype == torch.float32
        return f"{n} batches; robo.base_action is NaN on {int(np.isnan(frames['base_action'][:, 0]).sum())} frames"

    def policy_features() -> str:
        feats = dataset_to_policy_features(theirs.meta.features)
        kinds = {k: f.type for k, f in feats.items()}
        assert kinds == {"observation.state": FeatureType.STATE, CAM: FeatureType.VISUAL,
                         "action": FeatureType.ACTION}, kinds
        return "only observation.state, the camera and action are policy features"

    def stats() -> str:
        meta = theirs.meta.stats
        both = aggregate_stats([meta, meta])
        for key, d in meta.items():
            for name in ("mean", "std", "min", "max", "q01", "q99"):
                np.testing.assert_allclose(both[key][name], d[name], rtol=1e-9, atol=1e-12, err_msg=f"{key}.{name}")
        # LeRobot's meta.episodes drops the stats columns: read them as LeRobot's aggregation tools get them
        shards = sorted((root / "meta" / "episodes").rglob("*.parquet"))
        rows = [r for shard in shards for r in pq.read_table(shard).to_pylist()]
        per_episode = [{k: {s: np.asarray(r[f"stats/{k}/{s}"]) for s in meta[k]} for k in meta} for r in rows]
        merged = aggregate_stats(per_episode)
        for key, d in meta.items():
            for name in d:
                np.testing.assert_allclose(merged[key][name], d[name], rtol=1e-7, atol=1e-12,
                                           err_msg=f"per-episode {key}.{name}")
        assert meta[CAM]["mean"].shape == (3, 1, 1) and int(meta[CAM]["count"][0]) == ours.num_frames
        return f"aggregate_stats accepts dataset and per-episode stats ({len(meta)} features) and agrees"

    def normaliser() -> str:
        feats = dataset_to_policy_features(theirs.meta.features)
        batch = next(iter(torch.utils.data.DataLoader(theirs, batch_size=5)))
        st = theirs.meta.stats
        state, image = batch["observation.state"].double(), batch[CAM].double()
        expected = {
            NormalizationMode.MEAN_STD: lambda s: (state - s["mean"]) / (s["std"] + 1e-8),
            NormalizationMode.MIN_MAX: lambda s: 2 * (state - s["min"]) / _nonzero(s["max"] - s["min"]) - 1,
            NormalizationMode.QUANTILES: lambda s: 2 * (state - s["q01"]) / _nonzero(s["q99"] - s["q01"]) - 1,
            NormalizationMode.QUANTILE10: lambda s: 2 * (state - s["q10"]) / _nonzero(s["q90"] - s["q10"]) - 1,
        }
        for mode, want in expected.items():
            step = NormalizerProcessorStep(features=feats, stats=st, eps=1e-8, norm_map={
                FeatureType.VISUAL: NormalizationMode.MEAN_STD, FeatureType.STATE: mode,
                FeatureType.ACTION: NormalizationMode.MIN_MAX})
            out = step(batch_to_transition(dict(batch)))[TransitionKey.OBSERVATION]
            s = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in st["observation.state"].items()}
            np.testing.assert_allclose(out["observation.state"].double(), want(s), rtol=1e-5, atol=1e-5,
                                       err_msg=str(mode))
        c = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in st[CAM].items()}
        np.testing.assert_allclose(out[CAM].double(), (image - c["mean"]) / (c["std"] + 1e-8), rtol=1e-5, atol=1e-5)
        return "MEAN_STD on (B, 3, H, W) images, MIN_MAX / MEAN_STD / QUANTILES / QUANTILE10 on the state"

    def windows() -> str:
        delta = {"observation.state": [-0.1, 0.0], CAM: [-0.1, 0.0], "action": [-0.1, 0.0, 0.1, 0.2]}
        lw = LeRobotDataset(REPO_ID, root=root, delta_timestamps=delta)
        rw = ours.windows(n_obs_steps=2, horizon=4)
        for i in range(len(lw)):
            a, b = lw[i], rw[i]
            np.testing.assert_array_equal(a["observation.state"].numpy(), b["observation.state"])
            np.testing.assert_array_equal(a["action"].numpy(), b["action"])
            np.testing.assert_array_equal(a["action_is_pad"].numpy(), b["action_is_pad"])
            img = (a[CAM].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
            np.testing.assert_array_equal(img, b[CAM])
        return f"{len(lw)} windows (To=2, T=4, camera included) equal"

    for name, fn in [("values", values), ("tasks", tasks), ("collate", collate),
                     ("policy features", policy_features), ("stats", stats), ("normaliser", normaliser),
                     ("delta_timestamps", windows)]:
        check(f"robo -> LeRobot: {name}", fn)


def _nonzero(x):  # LeRobot's guard against a zero range
    import torch

    return torch.where(x == 0, torch.full_like(x, 1e-8), x)


def check_lerobot_to_robo(root: Path, check: Checks) -> None:
    from lerobot_fixture import CAMERAS, write_with_lerobot

    from robo.data import Dataset

    def read() -> str:
        from lerobot_fixture import lerobot_view

        write_with_lerobot(root)
        view = lerobot_view(root)
        ds = Dataset(root)
        frames = {k: np.concatenate([ds.episode(i)[k] for i in range(ds.num_episodes)]) for k in ds.columns}
        for key in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index",
                    "task_index", *CAMERAS):
            np.testing.assert_array_equal(frames[key], view[key].reshape(frames[key].shape), err_msg=key)
        assert [ds.tasks[i] for i in frames["task_index"]] == [str(t) for t in view["task"]]
        win = ds.windows(2, 4)
        for i in range(len(win)):
            np.testing.assert_array_equal(win[i]["action"], view["window/action"][i])
            np.testing.assert_array_equal(win[i]["action_is_pad"], view["window/action_is_pad"][i])
        return f"{ds.num_frames} frames of {ds.num_episodes} episodes in one file, AV1, LeRobot's tasks file"

    check("LeRobot -> robo: values, images, tasks, windows", read)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", default=None, help="write the two datasets here and keep them")
    args = parser.parse_args()
    import_lerobot()
    print(f"LeRobot {lerobot_version()}, Python {sys.version.split()[0]}")
    check = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        check_robo_to_lerobot(base / "written_by_robo", check)
        check_lerobot_to_robo(base / "written_by_lerobot", check)
    print(f"{7 + 1 - len(check.failed)} passed, {len(check.failed)} failed")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
