"""Regenerate tests/data/fixtures/lerobot_v30: a small dataset written by LeRobot 0.4's own writer.

    bash scripts/lerobot_env.sh && .venv-lerobot/bin/python scripts/lerobot_fixture.py

`LeRobotDataset.create` + `add_frame` / `save_episode` / `finalize` write 3 episodes (7, 10, 5 frames,
2 tasks, fps 10) with LeRobot's defaults: all episodes in one data file and one AV1 (libsvtav1) mp4
per camera, its tasks file (text as the pandas index), its stats (quantiles, (3, 1, 1) image stats).
Cameras (H x W): `front` 24 x 32 and `wrist` 16 x 32, not square so a height/width swap shows (the
libsvtav1 of PyAV 15, LeRobot's pin, encodes no frame narrower than 32).

Beside it, `lerobot_v30_reference.npz` holds what LeRobot's own loader returns for that dataset: every
frame's values (images as uint8, decoded by torchcodec), the task text, and the `delta_timestamps`
windows of every frame. tests/data/test_data_lerobot.py checks that robo's reader returns the same,
without LeRobot installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from lerobot_common import FIXTURE, REFERENCE, import_lerobot, lerobot_version

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local

REPO_ID = "robo/lerobot_v30_fixture"  # LeRobot wants one; nothing is fetched (root is given, hub offline)
LENGTHS = (7, 10, 5)
TASKS = ("pick up the cube", "put the cube down", "pick up the cube")
CAMERAS = {"observation.images.front": (24, 32), "observation.images.wrist": (16, 32)}
#: windows asked of LeRobot: 2 observation steps, 4 action steps from the previous one (robo's To=2, T=4)
DELTA_TIMESTAMPS = {"observation.state": [-0.1, 0.0], "action": [-0.1, 0.0, 0.1, 0.2]}


def frame(e: int, t: int) -> dict[str, np.ndarray]:
    """Recognisable values: episode e, frame t."""
    out = {
        "observation.state": np.array([e, t, 0.5 * e * t, -1.0 + 0.125 * t], np.float32),
        "action": np.array([0.01 * t, -0.02 * t, 0.1 * e], np.float32),
    }
    for key, (h, w) in CAMERAS.items():
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([40 * e + 8 * t + 0 * x, 6 * x + 0 * y, 5 * y + 60], axis=-1)
        out[key] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def write_with_lerobot(root: Path) -> None:
    """The fixture dataset at `root` (which must not exist), written by LeRobot's writer."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (4,), "names": ["e", "t", "et", "ramp"]},
        "action": {"dtype": "float32", "shape": (3,), "names": ["dx", "dy", "dz"]},
        **{
            key: {"dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
            for key, (h, w) in CAMERAS.items()
        },
    }
    ds = LeRobotDataset.create(REPO_ID, fps=10, features=features, root=root, robot_type="panda", use_videos=True)
    for e, n in enumerate(LENGTHS):
        for t in range(n):
            ds.add_frame({**frame(e, t), "task": TASKS[e]})
        ds.save_episode()
    ds.finalize()


def lerobot_view(root: Path) -> dict[str, np.ndarray]:
    """What LeRobot's own loader returns for the dataset at `root`, frame by frame (images as uint8)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    plain = LeRobotDataset(REPO_ID, root=root)
    windows = LeRobotDataset(REPO_ID, root=root, delta_timestamps=DELTA_TIMESTAMPS)
    view: dict[str, list[np.ndarray]] = {}
    for i in range(len(plain)):
        item, win = plain[i], windows[i]
        for key in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index",
                    "task_index"):
            view.setdefault(key, []).append(item[key].numpy())
        for key in CAMERAS:  # float (3, H, W) in [0, 1] = uint8 / 255: back to uint8 (H, W, 3), exactly
            view.setdefault(key, []).append((item[key].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        view.setdefault("task", []).append(np.array(item["task"]))
        for key in DELTA_TIMESTAMPS:
            view.setdefault(f"window/{key}", []).append(win[key].numpy())
            view.setdefault(f"window/{key}_is_pad", []).append(win[f"{key}_is_pad"].numpy())
    return {k: np.stack(v) for k, v in view.items()}


def main() -> None:
    import_lerobot()
    shutil.rmtree(FIXTURE, ignore_errors=True)
    write_with_lerobot(FIXTURE)
    np.savez_compressed(REFERENCE, lerobot_version=np.array(lerobot_version()), **lerobot_view(FIXTURE))
    size = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()) + REFERENCE.stat().st_size
    print(f"wrote {FIXTURE} and {REFERENCE.name} ({size / 1024:.0f} KiB) with LeRobot {lerobot_version()}")


if __name__ == "__main__":
    main()
