"""robo.data.video_cache: windows over video larger than the cache budget equal the in-RAM path's,
come in an order that decodes each block once, work in DataLoader workers, and stay within the budget."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CAM, state_at

from robo.data import Dataset, DatasetError, DatasetWriter, Windows
from robo.data.video_cache import BlockCache, VideoCacheConfig
from robo.spec import Feature, Spec

LEROBOT = Path(__file__).parent / "fixtures" / "lerobot_v30"
LENGTHS = [7, 1, 12, 9, 16]
TINY = VideoCacheConfig(cache_mb=0.02, block_frames=4)  # 20 KiB: 6 frames of 32 x 32 (3 KiB each)


def assert_windows_equal(a: Windows, b: Windows, indices: range | list[int] | None = None) -> None:
    for i in range(len(a)) if indices is None else indices:
        x, y = a[i], b[i]
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"window {i} key {k}")


def window_index(ds: Dataset, item: dict[str, np.ndarray]) -> int:
    """The window an item of the conftest data is (its last state is state_at(e, t))."""
    last = item["observation.state"][-1]
    e, t = int(round(last[0])) // 1000, int(round(last[0])) % 1000
    np.testing.assert_array_equal(last, state_at(e, t))
    return int(ds._starts[e]) + t


# ---------------------------------------------------------------------------------------------
# config and cache
# ---------------------------------------------------------------------------------------------
def test_config_rejects_bad_values_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"cache_mb=-1 is out of range"):
        VideoCacheConfig(cache_mb=-1)
    with pytest.raises(ValueError, match=r"block_frames=7 must be even"):
        VideoCacheConfig(block_frames=7)
    with pytest.raises(ValueError, match=r"decode_threads=-1 is out of range"):
        VideoCacheConfig(decode_threads=-1)


def test_block_cache_lru_bound_hold_and_failed_decodes() -> None:
    calls: list[int] = []

    def decode(block: int) -> dict[str, np.ndarray]:
        calls.append(block)
        if block == 99:
            raise ValueError("broken block")
        return {"x": np.full(10, block, np.uint8)}

    cache = BlockCache(decode, lambda b: 10, capacity=30, threads=1)
    for b in (0, 1, 2, 0, 3):  # 0 touched again: 1 is the least recently used when 3 comes
        assert cache.get(b)["x"][0] == b
        assert cache.used <= 30
    assert calls == [0, 1, 2, 3]
    cache.get(1)
    assert calls[-1] == 1  # evicted before, decoded again
    cache.hold([1, 3])  # 0 is evicted (not held), then nothing more fits: 5, 6 are left to decode on demand
    cache.prefetch([4, 5, 6])
    assert cache.get(4)["x"][0] == 4 and cache.used <= 30
    assert calls.count(4) == 1 and 5 not in calls and 6 not in calls
    assert calls.count(1) == 2 and calls.count(3) == 1
    cache.get(1), cache.get(3)
    assert calls.count(1) == 2 and calls.count(3) == 1  # held: still cached
    for _ in range(2):  # a failed decode is not cached: each get tries again and raises again
        with pytest.raises(ValueError, match="broken block"):
            cache.get(99)
    assert calls.count(99) == 2 and cache.used <= 30
    cache.prefetch([99])
    with pytest.raises(ValueError, match="broken block"):
        cache.get(99)
    cache.close()


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_obs_steps", [1, 3])
def test_blocks_give_the_in_ram_values(tmp_path: Path, write_dataset: Callable[..., Spec], n_obs_steps: int) -> None:
    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    ram = Dataset(tmp_path / "ds").windows(n_obs_steps, 4)
    blocks = Dataset(tmp_path / "ds").windows(n_obs_steps, 4, video=TINY)
    assert ram.video is None and blocks.video is not None
    assert CAM not in blocks.arrays and len(blocks.video.episode) == sum(-(-n // 4) for n in LENGTHS)
    assert_windows_equal(ram, blocks)  # in order: every block boundary, halo and episode edge
    assert_windows_equal(ram, blocks, list(np.random.default_rng(0).permutation(len(ram))))  # LRU misses
    assert blocks.video.cache().used <= TINY.cache_bytes
    sub = Dataset(tmp_path / "ds").windows(n_obs_steps, 2, keys=[CAM, "next.reward"], episodes=[3, 0], video=TINY)
    assert sub.video is not None and len(sub) == 16
    assert_windows_equal(Dataset(tmp_path / "ds").windows(n_obs_steps, 2, keys=[CAM, "next.reward"], episodes=[3, 0]),
                         sub)


def test_blocks_of_lerobots_multi_episode_av1_file() -> None:
    """LeRobot's files hold several episodes (from_timestamp offsets) in AV1; blocks seek inside them."""
    ram = Dataset(LEROBOT).windows(2, 4)
    blocks = Dataset(LEROBOT).windows(2, 4, video=VideoCacheConfig(cache_mb=0.01, block_frames=2))
    assert blocks.video is not None and {s.first for s in blocks.video.sources[blocks.video.keys[0]]} == {0, 7, 17}
    assert_windows_equal(ram, blocks)


def test_budget_decides_ram_or_blocks(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    video_mb = sum(LENGTHS) * 32 * 32 * 3 / 2**20
    ds = Dataset(tmp_path / "ds")
    assert ds.windows(2, 4, video=VideoCacheConfig(cache_mb=video_mb * 0.99)).video is not None
    assert ds.windows(2, 4, video=VideoCacheConfig(cache_mb=video_mb)).video is None  # fits: decoded whole
    assert ds.windows(2, 4, video=VideoCacheConfig(cache_mb=0)).video is None  # now in RAM: used as it is


def test_epoch_gives_every_window_once_decoding_each_block_once(
    tmp_path: Path, write_dataset: Callable[..., Spec]
) -> None:
    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    ds = Dataset(tmp_path / "ds")
    ram = Dataset(tmp_path / "ds").windows(2, 4)
    cfg = VideoCacheConfig(cache_mb=0.04, block_frames=4)  # 13 frames: groups of ~2 blocks
    win = ds.windows(2, 4, video=cfg)
    assert win.video is not None
    orders = []
    for seed in (0, 0, 1):
        seen = []
        for item in win.epoch(np.random.default_rng(seed)):
            i = window_index(ds, item)
            for k in item:
                np.testing.assert_array_equal(item[k], ram[i][k], err_msg=f"window {i} key {k}")
            seen.append(i)
        assert sorted(seen) == list(range(len(win)))
        orders.append(seen)
    n_blocks = len(win.video.episode)
    assert win.video.cache().decoded <= 3 * n_blocks + 2  # each block once an epoch (+ a group kept across)
    assert orders[0] == orders[1] and orders[0] != orders[2]  # the rng decides the order
    assert orders[0] != sorted(orders[0])
    shards = [list(win.epoch(np.random.default_rng(5), shard=(k, 3))) for k in range(3)]
    assert sorted(window_index(ds, it) for s in shards for it in s) == list(range(len(win)))
    in_ram = [window_index(ds, it) for it in ram.epoch(np.random.default_rng(5))]
    assert in_ram == [int(i) for i in np.random.default_rng(5).permutation(len(ram))]  # RAM: plain permutation


def test_corrupt_video_raises_naming_the_file(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    win = Dataset(tmp_path / "ds").windows(2, 4, video=TINY)
    mp4 = tmp_path / "ds" / "videos" / CAM / "chunk-000" / "file-002.mp4"
    mp4.write_bytes(mp4.read_bytes()[:200])
    for _ in range(2):  # not cached as broken: raises each time
        with pytest.raises(DatasetError, match=r"file-002\.mp4: cannot decode video"):
            win[LENGTHS[0] + LENGTHS[1] + 5]
    with pytest.raises(DatasetError, match=r"file-002\.mp4: cannot decode video"):
        list(win.epoch(np.random.default_rng(0)))
    np.testing.assert_array_equal(win[0]["observation.state"][-1], state_at(0, 0))  # the others still read


# ---------------------------------------------------------------------------------------------
# DataLoader workers
# ---------------------------------------------------------------------------------------------
class _Capacity(torch.utils.data.Dataset):
    """Reports the cache capacity a DataLoader worker's copy of `windows` gets."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        self.windows[i]
        assert self.windows.video is not None
        return self.windows.video.cache().capacity


def test_dataloader_workers_fork_own_caches(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    ds = Dataset(tmp_path / "ds")
    ram = Dataset(tmp_path / "ds").windows(2, 4)
    cfg = VideoCacheConfig(cache_mb=0.08, block_frames=4)
    win = ds.windows(2, 4, video=cfg)
    next(win.epoch(np.random.default_rng(0)))  # the parent's cache, threads and lock exist before the fork
    fork = {"num_workers": 2, "multiprocessing_context": "fork"}

    shuffled = win.shuffled(seed=3)
    for _ in range(2):  # two epochs, each every window exactly once across the workers
        seen = []
        for batch in torch.utils.data.DataLoader(shuffled, batch_size=5, **fork):
            for j in range(len(batch["action"])):
                item = {k: v[j].numpy() for k, v in batch.items()}
                i = window_index(ds, item)
                np.testing.assert_array_equal(item[CAM], ram[i][CAM])
                seen.append(i)
        assert sorted(seen) == list(range(len(win)))

    order = list(np.random.default_rng(1).permutation(len(win)))  # map-style, any order (LRU misses)
    loader = torch.utils.data.DataLoader(win, batch_size=6, sampler=order, **fork)
    got = torch.cat([b[CAM] for b in loader]).numpy()
    np.testing.assert_array_equal(got, np.stack([ram[int(i)][CAM] for i in order]))

    caps = torch.cat(list(torch.utils.data.DataLoader(_Capacity(win), batch_size=1, **fork))).tolist()
    assert caps == [cfg.cache_bytes // 2] * 4  # the loader's budget split between its workers
    assert win.video.cache().capacity == cfg.cache_bytes


def test_bc_batches_read_blocks_in_epoch_order(tmp_path: Path, write_dataset: Callable[..., Spec]) -> None:
    from robo.learn.bc import _batches

    write_dataset(tmp_path / "ds", LENGTHS, camera=True)
    ds = Dataset(tmp_path / "ds")
    win = ds.windows(2, 4, video=TINY)
    batches = _batches(win, 8, np.random.default_rng(0))
    first_epoch = [next(batches) for _ in range(len(win) // 8)]
    assert all(b[CAM].shape == (8, 2, 32, 32, 3) for b in first_epoch)
    ids = [window_index(ds, {"observation.state": s.numpy()}) for b in first_epoch for s in b["observation.state"]]
    assert len(set(ids)) == len(ids) == 8 * (len(win) // 8)  # an epoch: no window twice


# ---------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------
SIDE = 96
CAMS = ("observation.images.a", "observation.images.b")
BUDGET_MB = 16
MARGIN_MB = 24
"""Memory beyond the cache: FFmpeg's decoders on first use (~6 MiB: code and tables paged in), the
decode threads' stacks, decoder states and malloc arenas, the windows in flight. Measured: 13-15 MiB
in a fresh process, 0-2 MiB once earlier tests have used the decoders."""


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 episodes x 100 frames of two 96 x 96 cameras: 79 MiB decoded, 5x the budget."""
    root = tmp_path_factory.mktemp("big") / "ds"
    spec = Spec({"observation.state": Feature((2,)), **{c: Feature((SIDE, SIDE, 3), "uint8") for c in CAMS},
                 "action": Feature((2,))})
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    with DatasetWriter(root, spec, fps=10, task="t") as w:
        for e in range(15):
            for t in range(100):
                frame = {"observation.state": np.array([e, t], np.float32), "action": np.array([e, -t], np.float32),
                         "action_source": "scripted"}
                for k, c in enumerate(CAMS):
                    frame[c] = np.stack([(xx + 3 * t + 40 * k) % 256, (yy + 5 * e) % 256,
                                         np.full_like(xx, (7 * e + t) % 256)], -1).astype(np.uint8)
                w.add_frame(frame)
            w.save_episode()
    return root


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


@contextmanager
def peak_rss_above_start() -> Iterator[list[float]]:
    """Yields a list that holds, after the block, this process's peak RSS during it minus its RSS at
    its start, MiB. Resets the kernel's high-water mark (Linux >= 4.0, /proc/self/clear_refs);
    where that is refused, samples RSS every millisecond instead."""
    out: list[float] = []
    start = _status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        sampler = None
    except OSError:
        peak = [start]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _status_mb("VmRSS"))
                time.sleep(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    yield out
    if sampler is None:
        out.append(_status_mb("VmHWM") - start)
    else:
        stop.set()
        sampler.join()
        out.append(max(peak[0], _status_mb("VmRSS")) - start)


def _digest(item: dict[str, np.ndarray]) -> bytes:
    return hashlib.blake2b(b"".join(item[c].tobytes() for c in CAMS), digest_size=16).digest()


def _iterate_under_budget(root: str) -> dict:
    """In a fresh interpreter (see the test): the probe, every window of an epoch under the budget."""
    with peak_rss_above_start() as probe:  # the probe sees what is allocated
        x = np.ones(32 << 20, np.uint8)
        del x
    ds = Dataset(root)
    win = ds.windows(2, 16, video=VideoCacheConfig(cache_mb=BUDGET_MB))
    assert win.video is not None
    digests: dict[int, str] = {}
    with peak_rss_above_start() as peak:
        for item in win.epoch(np.random.default_rng(0)):
            e, t = (int(v) for v in item["observation.state"][-1])
            digests[int(ds._starts[e]) + t] = _digest(item).hex()
    used = win.video.cache().used
    win.video.cache().close()
    return {"probe": probe[0], "peak": peak[0], "used": used, "digests": digests}


def test_peak_rss_stays_within_the_budget_over_every_window(big_dataset: Path) -> None:
    """Measured in a fresh Python process: in one that ran other tests, glibc's malloc thresholds (moved by
    its history) can keep freed memory resident, and then no allocation shows in the peak RSS (the probe)."""
    import json
    import subprocess
    import sys

    here = Path(__file__).parent
    code = (f"import json, sys; sys.path.insert(0, {str(here)!r}); import {Path(__file__).stem} as m; "
            f"print(json.dumps(m._iterate_under_budget({str(big_dataset)!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["probe"] >= 31  # the measurement sees a 32 MiB allocation
    ds = Dataset(big_dataset)
    video_mb = ds.num_frames * len(CAMS) * SIDE * SIDE * 3 / 2**20
    assert video_mb > 4 * BUDGET_MB and video_mb > BUDGET_MB + MARGIN_MB + 30  # all of it would not pass
    digests = {int(k): bytes.fromhex(v) for k, v in got["digests"].items()}
    assert sorted(digests) == list(range(1500))
    assert got["peak"] <= BUDGET_MB + MARGIN_MB, f"peak RSS {got['peak']:.1f} MiB above start"
    assert got["used"] <= BUDGET_MB * 2**20

    ram = ds.windows(2, 16, video=VideoCacheConfig(cache_mb=2 * video_mb))
    assert ram.video is None
    assert all(_digest(ram[i]) == d for i, d in digests.items())  # the in-RAM path's values
