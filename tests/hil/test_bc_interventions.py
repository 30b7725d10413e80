"""Retraining with interventions: only windows whose whole action chunk a teacher acted are trained on."""

import subprocess
import sys

import numpy as np

from robo.data import Dataset, DatasetWriter
from robo.learn.bc import MixedWindows, human_windows
from robo.spec import ACTION, STATE, Feature, Spec

SPEC = Spec({STATE: Feature((2,), "float32", ("a", "b"), "m"),
             ACTION: Feature((1,), "float32", ("x",), "m", (-1.0,), (1.0,))})


def write(root, sources: list[list[str]], tag: float = 0.0):
    with DatasetWriter(root, SPEC, fps=10, task="t") as w:
        for ep in sources:
            for t, src in enumerate(ep):
                w.add_frame({STATE: np.array([t, tag], np.float32), ACTION: np.array([t / 10], np.float32),
                             "action_source": src, "segment": "autonomous" if src == "policy" else "correction",
                             "intervention_id": -1 if src == "policy" else 0})
            w.save_episode(success=True)
    return Dataset(root)


def test_windows_start_only_where_the_whole_chunk_is_human(tmp_path):
    ds = write(tmp_path / "s", [["policy"] * 4 + ["human"] * 4 + ["hold"] * 2 + ["human"] * 3])
    assert list(ds.column("segment")[:5]) == ["autonomous"] * 4 + ["correction"]
    w = human_windows(ds, ds.windows(1, 3))
    ts = sorted(int(w[i][STATE][0, 0]) for i in range(len(w)))
    # chunk t..t+2: human at 4..7, 10..12; the episode's last frame repeats as padding
    assert ts == [4, 5, 10, 11, 12]
    assert len(human_windows(ds, ds.windows(1, 3), teach_segments=())) == 0  # corrections not taught


def test_demo_datasets_keep_every_window_and_the_mix_ratio_holds(tmp_path):
    demos = write(tmp_path / "d", [["scripted"] * 10] * 4)
    sessions = write(tmp_path / "s", [["policy"] * 5 + ["human"] * 5], tag=1.0)
    wd, ws = human_windows(demos, demos.windows(1, 2)), human_windows(sessions, sessions.windows(1, 2))
    assert len(wd) == 40 and len(ws) == 5  # t = 5..9: the last frame pads its own chunk
    plain = MixedWindows([wd, ws])
    assert len(list(plain.epoch(np.random.default_rng(0)))) == 45
    mixed = MixedWindows([wd, ws], fraction=0.5)
    items = list(mixed.epoch(np.random.default_rng(0)))
    from_sessions = sum(float(it[STATE][0, 1]) == 1.0 for it in items)
    assert len(items) == 45 and 0.35 < from_sessions / 45 < 0.65  # half the items, far more than 5/45


def test_robo_train_bc_takes_several_data_folders(tmp_path):
    write(tmp_path / "d", [["scripted"] * 10])
    write(tmp_path / "s", [["policy"] * 5 + ["human"] * 5])
    out = subprocess.run([sys.executable, "-m", "robo.cli", "train", "bc", "--data", str(tmp_path / "d"),
                          "--data", str(tmp_path / "s"), "extra_fraction=0.3", "--print-config"],
                         capture_output=True, text=True, check=True).stdout
    import yaml

    cfg = yaml.safe_load(out)
    assert cfg["data"] == str(tmp_path / "d") and cfg["extra_data"] == [str(tmp_path / "s")]
    assert cfg["extra_fraction"] == 0.3
    bad = subprocess.run([sys.executable, "-m", "robo.cli", "train", "bc", "--data", str(tmp_path / "d"),
                          "--data", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode != 0 and "nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
