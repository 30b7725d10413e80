"""Helpers of the console tests (a module of its own: test modules do not import each other)."""

from __future__ import annotations

import io
import re
import threading
import time

LIFT = "PandaLift-v0"


class Lines(io.TextIOBase):
    """A status stream the test can wait on."""

    def __init__(self) -> None:
        self.text = ""
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            self.text += s
        return len(s)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the session's output:\n{self.text}")
