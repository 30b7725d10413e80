"""The operator console: a local web page for collect, run and intervene sessions, and a dataset browser.

Session side (no web dependency): `robo.console.hub` (ConsoleHub: the publisher the loops call).
Server side (aiohttp, the `console` extra): `robo.console.server.ConsoleServer`; `robo.console.cli`
starts it for `--console` and `robo console`.
"""

from robo.console.hub import (
                              COLLECT_CONTROLS,
                              INTERVENE_CONTROLS,
                              RUN_CONTROLS,
                              ConsoleHub,
                              Control,
                              NullPublisher,
                              Publisher,
                              cell_health,
                              period,
)

__all__ = ["ConsoleHub", "Control", "Publisher", "NullPublisher", "cell_health", "period", "INTERVENE_CONTROLS",
           "RUN_CONTROLS", "COLLECT_CONTROLS"]
