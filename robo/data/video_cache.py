"""Decoded video under a memory budget, for training windows over datasets larger than RAM.

`Dataset.windows()` decodes a dataset's cameras whole into RAM when their decoded frames fit
`VideoCacheConfig.cache_mb` (the fastest path: decode once, then every epoch is free). Larger
datasets are read in **blocks**: `block_frames` consecutive frames of one episode, all the window's
cameras together, decoded on demand into a byte-bounded LRU cache, the next ones decoded ahead by
`decode_threads` threads.

Why blocks of an episode, not whole episodes: a window never crosses an episode, and a block starts
on a keyframe (robo and LeRobot write a GOP of 2; an even `block_frames` puts every block start on
one), so decoding a block costs one seek and no wasted frames. Whole episodes would be just as cheap
to decode, but a real teleop episode of two 224 x 224 cameras is 0.2-0.5 GB decoded: a few GB of
cache would hold a handful of episodes at a time, and every batch would mix only those. A 32-frame
block is ~10 MB there, so the same budget mixes windows from a hundred episodes. Each block also
holds the `n_obs_steps - 1` frames before it (the observation history of its first windows), so
every window reads one block.

Random windows are cheap in the order `Windows.epoch()` (and `Windows.shuffled()`, its torch
`IterableDataset`) gives: the blocks in a random order, taken in groups of half the cache, the
windows of a group shuffled; the next group is decoded while the current one is read. Every frame is
then decoded once per epoch. `Windows[i]` in any other order (a DataLoader with `shuffle=True`) gives
the same values, decoding whatever block a window needs, but an LRU cache smaller than the data
then misses on most windows.

Processes: the cache belongs to the process that made it. A forked or spawned DataLoader worker
builds its own (no decoder, thread or lock is shared across a fork), with `cache_mb / num_workers`
bytes, so the loader as a whole stays within `cache_mb`.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robo.config import check_range
from robo.data.format import DatasetError, _one_line
from robo.data.video import decode_frames

MB = 1 << 20


@dataclass
class VideoCacheConfig:
    """How `Dataset.windows()` holds decoded video (see robo.data.video_cache)."""

    cache_mb: float = 2048.0
    """Decoded video held in memory, MiB: cameras whose decoded frames fit are decoded whole up front,
    larger ones in blocks into a cache of this size. DataLoader workers get `cache_mb / num_workers`
    each. 2 GiB holds ~7 min of two 224 x 224 cameras at 30 fps, or ~3,000 blocks of two 64 x 64 ones."""
    block_frames: int = 32
    """Frames per cached block (even: with a GOP of 2 every block starts on a keyframe). Smaller mixes
    more episodes into a cache-sized group of windows; larger spends less on seeks."""
    decode_threads: int = 2
    """Threads decoding the next group of blocks while the current one is read (0: decode on demand)."""

    def __post_init__(self) -> None:
        check_range("cache_mb", self.cache_mb, 0.0, None)
        check_range("block_frames", self.block_frames, 2, None)
        if self.block_frames % 2:
            raise ValueError(f"block_frames={self.block_frames} must be even (blocks start on keyframes, GOP 2)")
        check_range("decode_threads", self.decode_threads, 0, 64)

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * MB)


@dataclass(frozen=True)
class VideoSource:
    """Where one episode's frames of one camera are: the mp4 and the episode's first frame in it."""

    path: Path
    first: int


# ----------------------------------------------------------------------------------------------
# the cache
# ----------------------------------------------------------------------------------------------
class BlockCache:
    """Thread-safe LRU of decoded blocks (dict key -> (n, H, W, 3) uint8), bounded in bytes.

    `get` returns a block, decoding it in the caller on a miss (or waiting for its decode ahead);
    `prefetch` decodes blocks on a thread pool as far as they fit without evicting held blocks;
    `hold` marks the blocks being read, which eviction skips. Bytes of blocks being decoded count
    as used from the moment they are reserved. The bound: `capacity`, or the held blocks plus the
    one being read where those alone exceed it.
    """

    def __init__(
        self,
        decode: Callable[[int], dict[str, np.ndarray]],
        nbytes: Callable[[int], int],
        capacity: int,
        threads: int,
    ) -> None:
        self._decode = decode
        self._nbytes = nbytes
        self.capacity = capacity
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, Future] = OrderedDict()  # LRU order, newest last
        self._held: set[int] = set()
        self.used = 0
        """Bytes of cached and in-flight blocks."""
        self.decoded = 0
        """Blocks decoded so far (misses + prefetches)."""

    def _make_room(self, need: int, keep: set[int] | frozenset[int]) -> bool:
        """Evict finished LRU blocks not in `keep` until `need` more bytes fit; True if they do. Lock held."""
        for block in list(self._entries):
            if self.used + need <= self.capacity:
                break
            fut = self._entries[block]
            if fut.done() and block not in keep:
                del self._entries[block]
                self.used -= self._nbytes(block)
        return self.used + need <= self.capacity

    def get(self, block: int) -> dict[str, np.ndarray]:
        with self._lock:
            fut = self._entries.get(block)
            owner = fut is None
            if owner:
                need = self._nbytes(block)
                if not self._make_room(need, self._held):
                    self._make_room(need, frozenset())  # the held blocks fill the cache: this one must be read
                fut = self._entries[block] = Future()
                self.used += need
                self.decoded += 1
            else:
                self._entries.move_to_end(block)
        if not owner:
            return fut.result()  # cached, or being decoded ahead: wait for it
        try:
            fut.set_result(self._decode(block))
        except BaseException as e:
            self._forget(block)  # a later get decodes it again (and raises again)
            fut.set_exception(e)
            raise
        return fut.result()

    def prefetch(self, blocks: Iterable[int]) -> None:
        if self._threads <= 0:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="robo-video")
            blocks = list(blocks)
            keep = self._held | set(blocks)  # never evict what this call brings in
            for block in blocks:
                if block in self._entries:
                    self._entries.move_to_end(block)
                    continue
                need = self._nbytes(block)
                if not self._make_room(need, keep):
                    break  # full of held blocks: the rest is decoded on demand
                self._entries[block] = self._pool.submit(self._decode_ahead, block)
                self.used += need
                self.decoded += 1

    def _decode_ahead(self, block: int) -> dict[str, np.ndarray]:
        try:
            return self._decode(block)
        except BaseException:
            self._forget(block)  # a waiting get() raises; a later one decodes it again
            raise

    def _forget(self, block: int) -> None:
        with self._lock:
            if self._entries.pop(block, None) is not None:
                self.used -= self._nbytes(block)

    def hold(self, blocks: Iterable[int]) -> None:
        """Protect `blocks` (and only them) from eviction by `prefetch`."""
        with self._lock:
            self._held = set(blocks)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._entries.clear()
            self.used = 0
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------------------------
# blocks of episodes
# ----------------------------------------------------------------------------------------------
def _num_workers() -> tuple[int, int]:
    """(worker id, number of workers) inside a torch DataLoader worker, else (0, 1)."""
    torch = sys.modules.get("torch")  # a DataLoader worker has imported it; never import it here
    info = torch.utils.data.get_worker_info() if torch is not None else None
    return (0, 1) if info is None else (info.id, info.num_workers)


def _own_pages(shape: tuple[int, ...]) -> np.ndarray:
    """`np.empty(shape, np.uint8)` in pages of its own (an anonymous mmap), returned to the kernel when
    the array goes. From malloc, evicted blocks would stay in its heap, in pieces later blocks do not
    always fit: measured, 16 MB of cache then held up to 12 MB more."""
    n = int(np.prod(shape))
    return np.frombuffer(mmap.mmap(-1, max(n, 1)), np.uint8, n).reshape(shape)


class VideoBlocks:
    """The cameras of a dataset's episodes split into blocks of `block_frames` frames, and the
    per-process cache of decoded blocks.

    Block `b` covers the windows whose last observation is at episode frames
    `[b_local * block_frames, (b_local + 1) * block_frames)` and holds frames from `halo`
    (= n_obs_steps - 1) earlier. Blocks are numbered over all episodes, `block_base[e]` being the
    first of episode `e`.
    """

    def __init__(
        self,
        sources: dict[str, list[VideoSource]],
        shapes: dict[str, tuple[int, ...]],
        lengths: np.ndarray,
        starts: np.ndarray,
        fps: float,
        n_obs_steps: int,
        config: VideoCacheConfig,
    ) -> None:
        self.keys = list(sources)
        self.sources = sources
        self.shapes = shapes
        self.fps = fps
        self.config = config
        self.block_frames = config.block_frames
        self.halo = n_obs_steps - 1
        lengths = np.asarray(lengths, np.int64)
        per_ep = -(-lengths // self.block_frames)
        self.block_base = np.concatenate([[0], np.cumsum(per_ep)]).astype(np.int64)
        n_blocks = int(self.block_base[-1])
        self.episode = np.repeat(np.arange(len(lengths)), per_ep)
        local = np.arange(n_blocks) - self.block_base[self.episode]
        self.first = np.maximum(local * self.block_frames - self.halo, 0)  # episode frames [first, stop)
        self.stop = np.minimum((local + 1) * self.block_frames, lengths[self.episode])
        self.global_first = np.asarray(starts, np.int64)[self.episode] + self.first
        self.frame_bytes = sum(int(np.prod(s)) for s in shapes.values())
        self._cache: BlockCache | None = None
        self._pid = -1

    def block_of(self, episode: np.ndarray, t_local: np.ndarray) -> np.ndarray:
        """Block ids of windows whose last observation is episode frame `t_local` of `episode`."""
        return self.block_base[episode] + t_local // self.block_frames

    def nbytes(self, block: int) -> int:
        return int(self.stop[block] - self.first[block]) * self.frame_bytes

    def decode(self, block: int) -> dict[str, np.ndarray]:
        e, f0, f1 = int(self.episode[block]), int(self.first[block]), int(self.stop[block])
        out = {}
        for key in self.keys:
            src = self.sources[key][e]
            try:
                frames = _own_pages((f1 - f0, *self.shapes[key]))
                out[key] = decode_frames(src.path, src.first + f0, src.first + f1, self.fps, self.shapes[key],
                                         out=frames)
            except Exception as e:  # noqa: BLE001 - av.error.* and frame-count errors
                raise DatasetError(f"{src.path}: cannot decode video ({_one_line(e)})") from e
        return out

    def cache(self) -> BlockCache:
        """This process's cache (made on first use; a forked worker makes a fresh one)."""
        if self._cache is None or self._pid != os.getpid():
            _, n_workers = _num_workers()
            self._cache = BlockCache(self.decode, self.nbytes, self.config.cache_bytes // n_workers,
                                     self.config.decode_threads)
            self._pid = os.getpid()
        return self._cache

    def groups(self, blocks: np.ndarray) -> list[np.ndarray]:
        """`blocks`, in their order, cut into consecutive groups of at most half the cache each (at
        least one block), so one group is read while the next is decoded."""
        sizes = (self.stop[blocks] - self.first[blocks]) * self.frame_bytes
        limit = max(self.cache().capacity // 2, 1)
        groups, start, total = [], 0, 0
        for i, size in enumerate(sizes.tolist()):
            if total + size > limit and i > start:
                groups.append(blocks[start:i])
                start, total = i, 0
            total += size
        if start < len(blocks):
            groups.append(blocks[start:])
        return groups

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"], state["_pid"] = None, -1  # a pickled copy (spawned worker) builds its own
        return state


def read_ahead(groups: Sequence[np.ndarray], cache: BlockCache) -> Iterable[np.ndarray]:
    """Yield each group once its blocks are cached and held, with the next group decoding ahead."""
    for i, group in enumerate(groups):
        cache.hold(group)
        for block in group:
            cache.get(int(block))
        if i + 1 < len(groups):
            cache.prefetch(int(b) for b in groups[i + 1])
        yield group
    cache.hold(())
