"""`ShuffledWindows`: `Windows.epoch()` as a torch IterableDataset, for DataLoader workers.

    loader = DataLoader(ds.windows(2, 16).shuffled(seed=0), batch_size=64, num_workers=4)

Each iteration is one epoch: every window once, shuffled (see `Windows.epoch`). With
`num_workers=k` each worker reads a disjoint shard of the blocks (1/k of the windows) with a cache
of its own of `cache_mb / k`; the shards are cut from one permutation that all workers draw from the
same seed: this object's `seed` and the base seed torch's DataLoader draws for each iteration (so
epochs differ, and `torch.manual_seed` makes them repeat). Without workers the epochs are numbered
from `seed` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from robo.data.reader import Windows


class ShuffledWindows(torch.utils.data.IterableDataset):
    """One shuffled epoch of `windows` per iteration; items as `Windows[i]`."""

    def __init__(self, windows: Windows, seed: int = 0) -> None:
        self.windows = windows
        self.seed = seed
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        if info is None:
            rng = np.random.default_rng([self.seed, self._epoch])
            self._epoch += 1
            return self.windows.epoch(rng)
        base_seed = (info.seed - info.id) % (1 << 63)  # the same in every worker of one iteration
        return self.windows.epoch(np.random.default_rng([self.seed, base_seed]), shard=(info.id, info.num_workers))
