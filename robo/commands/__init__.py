"""One module per `robo` sub-command: `HELP`, `add_arguments(parser)` and `run(args) -> exit code`."""

from __future__ import annotations

import logging

# third-party loggers that chatter at INFO (PyOpenGL announces a missing accelerator module on import)
_QUIET = ("OpenGL", "matplotlib", "PIL")


def setup_logging(level: str) -> None:
    """Timestamped log lines for the long-running commands (serve, learner, actor)."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
