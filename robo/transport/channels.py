"""Sockets and channels over ZMQ: RPC (ROUTER/DEALER), broadcast (PUB/SUB), heartbeats.

    server = RpcServer("tcp://*:5555", name="policy-server")          # binds
    req = server.recv(timeout_s=0.1)                                  # Request | None
    server.reply(req, "act", {"action": chunk})
    client = RpcClient("tcp://gpu-box:5555", name="robot1")          # connects
    msg = client.call("act_request", obs)                             # Message (raises on error)

    pub = Publisher("tcp://*:5556", name="learner")                   # e.g. versioned weights
    sub = Subscriber("tcp://gpu-box:5556", name="actor0")             # drained by a thread
    msg = sub.latest(timeout_s=0.0)                                   # newest unseen message or None

Every socket has high-water marks (`hwm`, messages) so a slow peer never grows memory without
bound: a ROUTER or PUB drops messages for a peer whose queue is full, a client never blocks on send
(it times out and reconnects instead). Clients follow the "lazy pirate" pattern: on a timeout they
close the socket (discarding queued messages), reconnect and resend, so a restarted server is picked
up transparently; late replies to abandoned requests are recognised by `seq` and ignored.

Servers never die on bad input: a malformed message is logged and dropped (`stats.n_malformed`); a
peer speaking another schema version gets an "error" reply with code "schema_version" and is dropped.
With CURVE on (see `robo.transport.auth`), a client whose key is not allowed fails the handshake: the
server logs it (`stats.n_auth_failures`) and never sees its messages; the client raises `AuthError`.

Liveness: `RpcServer.peers` records when each sender was last heard from; senders silent for longer
than `peer_timeout_s` are forgotten (`on_peer_lost`). Clients ping with "heartbeat" messages
(`RpcClient.ping`, or a background `Heartbeat`), which the server answers itself with its `info`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from robo.transport.auth import AuthError, CurveConfig
from robo.transport.codec import SCHEMA_VERSION, Message, MessageError, SchemaVersionError, decode, encode

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HWM",
    "PeerTimeout",
    "RemoteError",
    "PeerTable",
    "Request",
    "RpcServer",
    "RpcClient",
    "Publisher",
    "Subscriber",
    "Heartbeat",
]

DEFAULT_HWM = 64
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class PeerTimeout(TimeoutError):
    """No reply from the peer within the timeout, after all retries."""


class RemoteError(RuntimeError):
    """The peer answered with an "error" message (meta: code, message)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"remote error [{code}]: {message}")


def _default_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _server_socket(kind: int, hwm: int, curve: CurveConfig | None) -> tuple[zmq.Context, bool, zmq.Socket, Any]:
    """A tuned bind-side socket; with CURVE on, its own context and a running authenticator.

    Returns (context, whether the context is ours to terminate, socket, authenticator or None).
    """
    own_ctx = curve is not None
    ctx = zmq.Context() if own_ctx else zmq.Context.instance()
    sock = ctx.socket(kind)
    _tune(sock, hwm)
    auth = None
    if curve is not None:
        curve.apply_server(sock)
        auth = curve.start_authenticator(ctx)
    return ctx, own_ctx, sock, auth


_MONITOR_SLICE_MS = 50
"""Longest wait on a data socket before its handshake monitor is checked again."""


def _tune(sock: zmq.Socket, hwm: int) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)


class _Monitor:
    """Watches one socket's handshake events; turns failures into log lines or `AuthError`."""

    def __init__(self, sock: zmq.Socket, what: str) -> None:
        self.sock = sock.get_monitor_socket(_HANDSHAKE_EVENTS)
        self.what = what

    def failures(self) -> list[str]:
        out = []
        while True:
            try:
                ev = recv_monitor_message(self.sock, zmq.NOBLOCK)
            except zmq.Again:
                return out
            except zmq.ZMQError:
                return out
            event = ev["event"]
            endpoint = ev.get("endpoint", b"")
            endpoint = endpoint.decode(errors="replace") if isinstance(endpoint, bytes) else str(endpoint)
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                out.append(
                    f"{self.what} {endpoint}: CURVE authentication refused (status {ev['value']}); "
                    "the client key is not in the server's allow-list"
                )
            elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                out.append(
                    f"{self.what} {endpoint}: handshake failed (security mismatch: CURVE on one side "
                    f"only, or a wrong server key; zmtp error {ev['value']:#x})"
                )
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                out.append(f"{self.what} {endpoint}: handshake failed (errno {ev['value']})")

    def close(self) -> None:
        self.sock.close(linger=0)


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
    ) -> None:
        self.name = name
        self.info = dict(info or {})
        self.peers = PeerTable(peer_timeout_s)
        self.stats = ServerStats()
        self.on_peer_lost = on_peer_lost
        self.ctx, self._own_ctx, self.sock, self._auth = _server_socket(zmq.ROUTER, hwm, curve)
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
            msg = decode(frames[1:])
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
    ) -> None:
        self.endpoint = endpoint
        self.name = name or _default_name("client")
        self.curve = curve
        self.timeout_s = timeout_s
        self.retries = retries
        self.hwm = hwm
        self.ctx = zmq.Context.instance()
        self._seq = itertools.count(1)
        self.n_reconnects = 0
        self._connect()

    def _connect(self) -> None:
        sock = self.ctx.socket(zmq.DEALER)
        _tune(sock, self.hwm)
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
                msg = decode(frames)
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
        self, endpoint: str, *, name: str | None = None, curve: CurveConfig | None = None, hwm: int = 2
    ) -> None:
        self.endpoint = endpoint
        self.name = name or _default_name("subscriber")
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        _tune(self.sock, hwm)
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
                        newest = decode(frames)
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
