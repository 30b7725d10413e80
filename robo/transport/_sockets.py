"""What RPC and PUB/SUB sockets share: tuning, bind-side CURVE set-up, handshake monitoring, errors."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from robo.transport.auth import CurveConfig

log = logging.getLogger(__name__)

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


def _server_socket(
    kind: int, hwm: int, curve: CurveConfig | None, max_frame_bytes: int | None = None
) -> tuple[zmq.Context, bool, zmq.Socket, Any]:
    """A tuned bind-side socket; with CURVE on, its own context and a running authenticator.

    Returns (context, whether the context is ours to terminate, socket, authenticator or None).
    """
    own_ctx = curve is not None
    ctx = zmq.Context() if own_ctx else zmq.Context.instance()
    sock = ctx.socket(kind)
    _tune(sock, hwm, max_frame_bytes)
    auth = None
    if curve is not None:
        curve.apply_server(sock)
        auth = curve.start_authenticator(ctx)
    return ctx, own_ctx, sock, auth


_MONITOR_SLICE_MS = 50
"""Longest wait on a data socket before its handshake monitor is checked again."""


def _tune(sock: zmq.Socket, hwm: int, max_frame_bytes: int | None = None) -> None:
    """Linger, high-water marks, reconnect pacing, keep-alive; with `max_frame_bytes`, libzmq drops
    (and disconnects) a peer whose frame is larger before it is buffered (ZMQ_MAXMSGSIZE)."""
    sock.setsockopt(zmq.LINGER, 0)
    if max_frame_bytes is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, int(max_frame_bytes))
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
