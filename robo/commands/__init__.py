"""One module per `robo` sub-command: `HELP`, `add_arguments(parser)` and `run(args) -> exit code`."""

from __future__ import annotations

import logging
from collections.abc import Callable

# third-party loggers that chatter at INFO (PyOpenGL announces a missing accelerator module on import)
_QUIET = ("OpenGL", "matplotlib", "PIL")


def setup_logging(level: str) -> None:
    """Timestamped log lines for the long-running commands (serve, learner, actor)."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM / SIGINT call `stop()` (a clean, resumable end). Outside the main thread (a Ray actor's
    worker thread) signals stay the host's: Ray ends the process itself."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())
