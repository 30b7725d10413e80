"""RPC over ZMQ: ROUTER server, lazy-pirate DEALER client, peer liveness, heartbeats.

See robo.transport.channels for the contract shared with PUB/SUB.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq

from robo.transport._sockets import (
    _MONITOR_SLICE_MS,
    DEFAULT_HWM,
    PeerTimeout,
    RemoteError,
    _default_name,
    _Monitor,
    _server_socket,
    _tune,
)
from robo.transport.auth import AuthError, CurveConfig
from robo.transport.codec import (
    DEFAULT_LIMITS,
    SCHEMA_VERSION,
    DecodeLimits,
    Message,
    MessageError,
    SchemaVersionError,
    decode,
    decode_header,
    encode,
)

log = logging.getLogger(__name__)

__all__ = ["Heartbeat", "PeerTable", "Request", "RpcClient", "RpcServer", "ServerStats"]


# ----------------------------------------------------------------------------------------- liveness
class PeerTable:
    """Last time each peer was heard from; peers silent for `timeout_s` expire."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._seen: dict[str, float] = {}

    def touch(self, peer: str, now: float | None = None) -> bool:
        """Record `peer` as alive; True if it is new (or came back after expiring)."""
        new = peer not in self._seen
        self._seen[peer] = time.monotonic() if now is None else now
        return new

    def expire(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        lost = [p for p, t in self._seen.items() if now - t > self.timeout_s]
        for p in lost:
            del self._seen[p]
        return lost

    def forget(self, peer: str) -> None:
        self._seen.pop(peer, None)

    def alive(self) -> list[str]:
        return sorted(self._seen)

    def __contains__(self, peer: str) -> bool:
        return peer in self._seen


# ----------------------------------------------------------------------------------------- RPC
def _seq_of(frames: list[Any]) -> int:
    """The seq of a request whose header parsed but whose arrays did not (0 if the header is bad too),
    so the sender's client can match the error reply to its request."""
    try:
        return decode_header(frames[1]).q if len(frames) > 1 else 0
    except MessageError:
        return 0


@dataclass
class Request:
    """One request received by an `RpcServer`; answer it with `server.reply(req, ...)`."""

    identity: bytes
    msg: Message

    @property
    def peer(self) -> str:
        return self.msg.sender


@dataclass
class ServerStats:
    n_requests: int = 0
    n_heartbeats: int = 0
    n_malformed: int = 0
    n_version_errors: int = 0
    n_auth_failures: int = 0
    n_peers_lost: int = 0
    auth_failures: list[str] = field(default_factory=list)


class RpcServer:
    """ROUTER socket that decodes requests, answers heartbeats and drops bad input.

    Not thread-safe: use it from one thread. `info` (msgpack-native dict) is sent in heartbeat replies.
    `limits` bounds what a request may hold (sizes, and the arrays a server reads); a request outside
    them is answered with an "error" (code "malformed") and counted in `stats.n_malformed`.
    """

    def __init__(
        self,
        bind: str,
        *,
        name: str = "server",
        curve: CurveConfig | None = None,
        hwm: int = DEFAULT_HWM,
        peer_timeout_s: float = 10.0,
        info: Mapping[str, Any] | None = None,
        on_peer_lost: Callable[[str], None] | None = None,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.name = name
        self.info = dict(info or {})
        self.peers = PeerTable(peer_timeout_s)
        self.stats = ServerStats()
        self.on_peer_lost = on_peer_lost
        self.limits = limits
        self.ctx, self._own_ctx, self.sock, self._auth = _server_socket(zmq.ROUTER, hwm, curve, limits.max_bytes)
        self._monitor = _Monitor(self.sock, f"{name}: client")
        try:
            self.sock.bind(bind)
        except zmq.ZMQError as e:
            self.close()
            raise OSError(f"{name}: cannot bind {bind}: {e}") from None
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._last_expire = time.monotonic()

    def recv(self, timeout_s: float | None = None) -> Request | None:
        """Next valid request, or None after `timeout_s` (None = wait forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self._housekeeping()
            req = self._read_one()  # hot path: a request already waiting costs no poll
            if req is not None:
                return req
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            # wait on the data socket alone, in slices, so handshake failures are still logged promptly
            slice_ms = _MONITOR_SLICE_MS if remaining is None else min(_MONITOR_SLICE_MS, int(remaining * 1000) + 1)
            if not self.sock.poll(slice_ms):
                self._log_auth_failures()

    def _housekeeping(self) -> None:
        """Every 0.25 s: expire silent peers and log refused handshakes."""
        now = time.monotonic()
        if now - self._last_expire < 0.25:
            return
        self._last_expire = now
        self._log_auth_failures()
        for peer in self.peers.expire(now):
            self.stats.n_peers_lost += 1
            log.info("%s: peer '%s' timed out (no message for %.1f s)", self.name, peer, self.peers.timeout_s)
            if self.on_peer_lost is not None:
                self.on_peer_lost(peer)

    def _log_auth_failures(self) -> None:
        for line in self._monitor.failures():
            self.stats.n_auth_failures += 1
            self.stats.auth_failures = (self.stats.auth_failures + [line])[-20:]
            log.warning("%s (peer dropped)", line)

    def _read_one(self) -> Request | None:
        try:
            frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        identity = frames[0].bytes
        try:
            msg = decode(frames[1:], limits=self.limits)
        except SchemaVersionError as e:
            self.stats.n_version_errors += 1
            log.warning("%s: dropped peer '%s': %s", self.name, e.sender, e)
            meta = {"code": "schema_version", "message": str(e), "server_version": SCHEMA_VERSION}
            self._send(identity, "error", None, meta, seq=e.seq)
            self.peers.forget(e.sender)
            return None
        except MessageError as e:
            self.stats.n_malformed += 1
            log.warning("%s: dropped malformed message (%d frames): %s", self.name, len(frames) - 1, e)
            self._send(identity, "error", None, {"code": "malformed", "message": str(e)}, seq=_seq_of(frames))
            return None
        if self.peers.touch(msg.sender):
            log.info("%s: peer '%s' connected", self.name, msg.sender)
        if msg.kind == "heartbeat":
            self.stats.n_heartbeats += 1
            self._send(identity, "heartbeat", None, self.info, seq=msg.seq)
            return None
        self.stats.n_requests += 1
        return Request(identity, msg)

    def _send(self, identity: bytes, kind: str, arrays: Any, meta: Any, *, seq: int, **kw: Any) -> None:
        frames = encode(kind, arrays, meta, seq=seq, sender=self.name, **kw)
        try:
            self.sock.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("%s: reply to a slow peer dropped (queue full)", self.name)

    def reply(
        self,
        req: Request,
        kind: str,
        arrays: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        **encode_kw: Any,
    ) -> None:
        """Answer `req` (same seq). Dropped silently if the peer is gone or its queue is full."""
        self._send(req.identity, kind, arrays, meta, seq=req.msg.seq, **encode_kw)

    def error(self, req: Request, code: str, message: str) -> None:
        self._send(req.identity, "error", None, {"code": code, "message": message}, seq=req.msg.seq)

    def close(self) -> None:
        if getattr(self, "_monitor", None) is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close()
        self.sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> RpcServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RpcClient:
    """DEALER client with timeouts, retries and reconnection (lazy pirate). One thread only."""

    def __init__(
        self,
        endpoint: str,
        *,
        name: str | None = None,
        curve: CurveConfig | None = None,
        timeout_s: float = 2.0,
        retries: int = 2,
        hwm: int = DEFAULT_HWM,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.endpoint = endpoint
        self.name = name or _default_name("client")
        self.curve = curve
        self.timeout_s = timeout_s
        self.retries = retries
        self.hwm = hwm
        self.limits = limits
        self.ctx = zmq.Context.instance()
        self._seq = itertools.count(1)
        self.n_reconnects = 0
        self._connect()

    def _connect(self) -> None:
        sock = self.ctx.socket(zmq.DEALER)
        _tune(sock, self.hwm, self.limits.max_bytes)
        if self.curve is not None:
            self.curve.apply_client(sock)
        self._monitor = _Monitor(sock, f"{self.name}: server")
        sock.connect(self.endpoint)
        self.sock = sock

    def _disconnect(self) -> None:
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close()
        self.sock.close(linger=0)

    def reconnect(self) -> None:
        """Drop the socket (and anything queued on it) and connect afresh."""
        self._disconnect()
        self._connect()
        self.n_reconnects += 1

    def call(
        self,
        kind: str,
        arrays: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        **encode_kw: Any,
    ) -> Message:
        """Send a request and wait for its reply.

        Raises `PeerTimeout` (no reply after retries), `AuthError` (CURVE handshake refused),
        `SchemaVersionError` (peer speaks another schema), `RemoteError` (an "error" reply).
        """
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        retries = self.retries if retries is None else retries
        seq = next(self._seq)
        frames = encode(kind, arrays, meta, seq=seq, sender=self.name, **encode_kw)
        for attempt in range(retries + 1):
            if attempt > 0:
                log.info(
                    "%s: no reply from %s in %.2f s; reconnecting (retry %d/%d)",
                    self.name,
                    self.endpoint,
                    timeout_s,
                    attempt,
                    retries,
                )
                self.reconnect()
            try:
                self.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                self._check_auth()
                continue
            reply = self._wait(seq, time.monotonic() + timeout_s, encode_kw.get("version", SCHEMA_VERSION))
            if reply is not None:
                return reply
        self._check_auth()
        raise PeerTimeout(f"{self.name}: no reply from {self.endpoint} ({retries + 1} attempts x {timeout_s:.2f} s)")

    def _check_auth(self) -> None:
        failures = self._monitor.failures()
        if failures:
            self.reconnect()  # stop the refused socket from retrying in the background
            raise AuthError(failures[0])

    def _wait(self, seq: int, deadline: float, sent_version: int) -> Message | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # the data socket alone (one poll per reply); a refused handshake is checked between slices
            if not self.sock.poll(min(_MONITOR_SLICE_MS, int(remaining * 1000) + 1)):
                self._check_auth()
                continue
            frames = self.sock.recv_multipart(copy=False)
            try:
                msg = decode(frames, limits=self.limits)
            except SchemaVersionError:
                raise
            except MessageError as e:
                log.warning("%s: dropped malformed reply: %s", self.name, e)
                continue
            if msg.kind == "error":
                code, text = str(msg.meta.get("code", "?")), str(msg.meta.get("message", ""))
                if code == "schema_version":
                    peer_v = msg.meta.get("server_version", msg.version)
                    raise SchemaVersionError(peer_v, msg.sender, seq, sent_version) from RemoteError(code, text)
                if msg.seq == seq:
                    raise RemoteError(code, text)
                continue
            if msg.seq != seq:
                continue  # a late reply to an abandoned request
            return msg

    def ping(self, timeout_s: float = 1.0, retries: int = 0) -> tuple[float, dict[str, Any]]:
        """Round-trip a heartbeat; returns (rtt_s, server info)."""
        t0 = time.perf_counter()
        msg = self.call("heartbeat", timeout_s=timeout_s, retries=retries)
        return time.perf_counter() - t0, msg.meta

    def close(self) -> None:
        self._disconnect()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------- heartbeat
class Heartbeat:
    """Background thread pinging an `RpcServer` every `interval_s` from its own socket.

    `alive` is False once no pong came back for `timeout_s`; `info` is the server's last info dict.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        name: str,
        curve: CurveConfig | None = None,
        interval_s: float = 0.5,
        timeout_s: float = 3.0,
    ) -> None:
        self.endpoint, self.name, self.curve = endpoint, name, curve
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.info: dict[str, Any] = {}
        self.last_pong = 0.0
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    @property
    def alive(self) -> bool:
        return self.last_pong > 0 and time.monotonic() - self.last_pong < self.timeout_s

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        client = RpcClient(self.endpoint, name=self.name, curve=self.curve, timeout_s=self.interval_s, retries=0)
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    _, self.info = client.ping(timeout_s=self.interval_s)
                    self.last_pong = time.monotonic()
                except PeerTimeout:
                    client.reconnect()
                except (AuthError, SchemaVersionError) as e:
                    self.error = e
                    log.error("%s", e)
                    return
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - t0)))
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
