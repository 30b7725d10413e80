"""Broadcast over ZMQ: PUB that never blocks, SUB drained into a latest-only slot (see robo.transport.channels)."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Mapping
from typing import Any

import zmq

from robo.transport._sockets import _default_name, _Monitor, _server_socket, _tune
from robo.transport.auth import AuthError, CurveConfig
from robo.transport.codec import DEFAULT_LIMITS, DecodeLimits, Message, MessageError, SchemaVersionError, decode, encode

log = logging.getLogger(__name__)

__all__ = ["Publisher", "Subscriber"]


# ----------------------------------------------------------------------------------------- PUB/SUB
class Publisher:
    """PUB socket: broadcast to all subscribers; a full subscriber queue drops (never blocks)."""

    def __init__(self, bind: str, *, name: str = "publisher", curve: CurveConfig | None = None, hwm: int = 2) -> None:
        self.name = name
        self.ctx, self._own_ctx, self.sock, self._auth = _server_socket(zmq.PUB, hwm, curve)
        try:
            self.sock.bind(bind)
        except zmq.ZMQError as e:
            self.close()
            raise OSError(f"{name}: cannot bind {bind}: {e}") from None
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._seq = itertools.count(1)

    def publish(
        self,
        kind: str,
        arrays: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        **encode_kw: Any,
    ) -> int:
        """Send one message to every connected subscriber; returns its seq."""
        seq = next(self._seq)
        frames = encode(kind, arrays, meta, seq=seq, sender=self.name, **encode_kw)
        try:
            self.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass
        return seq

    def close(self) -> None:
        self.sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        if self._own_ctx:
            self.ctx.term()


class Subscriber:
    """SUB socket drained by a background thread into a one-slot "latest" buffer.

    ZMQ's CONFLATE does not support multipart messages, and a PUB drops *new* messages once a slow
    subscriber's queue is full; so a thread keeps the queue empty and only the newest message is
    kept. `latest()` returns it once (then None until a newer one arrives); `recv()` waits for one.
    Memory stays bounded by `hwm` messages in flight plus the one kept. A burst faster than the
    drain is dropped at the publisher (PUB drops new messages for a full peer), so a publisher of
    state (weights) should re-send its current state now and then (the learner does).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        name: str | None = None,
        curve: CurveConfig | None = None,
        hwm: int = 2,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.endpoint = endpoint
        self.name = name or _default_name("subscriber")
        self.limits = limits
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        _tune(self.sock, hwm, limits.max_bytes)
        if curve is not None:
            curve.apply_client(self.sock)
        self._monitor = _Monitor(self.sock, f"{self.name}: publisher")
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.n_received = 0
        self.n_malformed = 0
        self.error: Exception | None = None
        self._slot: Message | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sub-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._monitor.sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(50))
                if self._monitor.sock in events:
                    failures = self._monitor.failures()
                    if failures:
                        self._fail(AuthError(failures[0]))
                        return
                if self.sock not in events:
                    continue
                newest = None
                while True:  # drain everything queued; keep the newest valid message
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    try:
                        newest = decode(frames, limits=self.limits)
                        self.n_received += 1
                    except SchemaVersionError as e:
                        self._fail(e)
                        return
                    except MessageError as e:
                        self.n_malformed += 1
                        log.warning("%s: dropped malformed message: %s", self.name, e)
                if newest is not None:
                    with self._cond:
                        self._slot = newest
                        self._cond.notify_all()
        except zmq.ZMQError as e:
            if not self._stop.is_set():
                self._fail(e)

    def _fail(self, e: Exception) -> None:
        log.error("%s: %s", self.name, e)
        with self._cond:
            self.error = e
            self._cond.notify_all()

    def latest(self, timeout_s: float = 0.0) -> Message | None:
        """The newest message not returned yet, waiting up to `timeout_s` for one; else None.

        Raises `AuthError` / `SchemaVersionError` if the subscription failed for that reason.
        """
        with self._cond:
            if self._slot is None and self.error is None and timeout_s > 0:
                self._cond.wait_for(lambda: self._slot is not None or self.error is not None, timeout_s)
            if self.error is not None:
                raise self.error
            msg, self._slot = self._slot, None
            return msg

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """Wait (forever when `timeout_s` is None) for a new message; the newest one, or None."""
        return self.latest(1e9 if timeout_s is None else timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close()
        self.sock.close(linger=0)
