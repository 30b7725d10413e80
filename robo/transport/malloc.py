"""Keep freed message buffers in the process instead of handing them back to the kernel (glibc).

libzmq allocates every received multi-megabyte frame (a camera image, a weights tensor) with malloc
and frees it when the last array viewing it goes away. glibc's default malloc adapts its thresholds
as a process runs, and depending on what the process allocated before, it may return such a buffer
to the kernel at every free and page-fault it back in at the next message: measured on the
benchmark's image round trip (`scripts/bench_transport.py`), one robo server process answered in
0.55-0.6 ms and another, started the same way, in 0.86 ms. Fixing the thresholds makes every process
take the fast path. robo's long-running message processes (`robo serve`, `robo learner`,
`robo actor`) call `keep_freed_buffers()` at start; a library never changes malloc for its host.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 64 << 20
"""Allocations below this come from the heap (reused) instead of a fresh mmap (page-faulted)."""
TRIM_THRESHOLD = 256 << 20
"""Free memory at the top of the heap kept for reuse before any is returned to the kernel."""

ENV_OPT_OUT = "ROBO_MALLOC_DEFAULT"
"""Set to 1 to leave malloc as shipped (for comparisons, or a process tight on memory)."""


def keep_freed_buffers() -> bool:
    """Set glibc's mmap and trim thresholds for this process; False where that is not possible.

    Not possible: a libc other than glibc (macOS, musl), or `ROBO_MALLOC_DEFAULT=1` in the environment.
    The cost is memory: up to `TRIM_THRESHOLD` of freed heap stays with the process.
    """
    if os.environ.get(ENV_OPT_OUT, "") not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not applied:
        log.debug("mallopt refused the thresholds; malloc left as shipped")
    return applied
