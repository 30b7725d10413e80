"""Channels over real loopback sockets: RPC, PUB/SUB latest-only, heartbeats, bad input, restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from transport_helpers import REPLY, free_port, spawn, stop, wait_for

from robo.transport import (
    SCHEMA_VERSION,
    PeerTimeout,
    Publisher,
    RemoteError,
    RpcClient,
    RpcServer,
    SchemaVersionError,
    Subscriber,
)
from robo.transport.channels import Heartbeat, PeerTable
from robo.transport.codec import KINDS, encode

pytestmark = pytest.mark.timeout(60)
HELPER = Path(__file__).resolve().parent / "transport_helpers.py"


class EchoThread:
    """An RpcServer in a thread answering every request with the matching reply kind."""

    def __init__(self, **kw):
        self.server = RpcServer("tcp://127.0.0.1:*", name="echo", **kw)
        self.endpoint = self.server.endpoint
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop_flag.is_set():
            req = self.server.recv(0.05)
            if req is None:
                continue
            if req.msg.meta.get("fail"):
                self.server.error(req, "bad_request", "asked to fail")
            else:
                self.server.reply(req, REPLY[req.msg.kind], req.msg.arrays, req.msg.meta)

    def close(self):
        self.stop_flag.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def echo():
    e = EchoThread(peer_timeout_s=0.5)
    yield e
    e.close()


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("heartbeat", "error")])
def test_rpc_round_trip_every_kind(echo, kind):
    arrays = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "img": np.zeros((1, 4, 4, 3), np.uint8)}
    with RpcClient(echo.endpoint, name="c") as client:
        msg = client.call(kind, arrays, {"k": kind})
    assert msg.kind == REPLY[kind] and msg.meta == {"k": kind} and msg.sender == "echo"
    np.testing.assert_array_equal(msg.arrays["x"], arrays["x"])
    assert not msg.arrays["x"].flags.owndata  # a view of the received frame, not a copy
    assert not msg.arrays["x"].flags.writeable


def test_heartbeat_and_error_kinds(echo):
    echo.server.info["role"] = "echo"
    with RpcClient(echo.endpoint, name="hb") as client:
        rtt, info = client.ping()
        assert info == {"role": "echo"} and 0 < rtt < 1.0
        with pytest.raises(RemoteError, match=r"\[bad_request\]: asked to fail"):
            client.call("obs", None, {"fail": True})
        assert client.call("obs", None, {"ok": 1}).meta == {"ok": 1}  # still usable after an error
    assert echo.server.stats.n_heartbeats >= 1


def test_peer_liveness_expires_silent_peers(echo):
    lost = []
    echo.server.on_peer_lost = lost.append
    with RpcClient(echo.endpoint, name="short-lived") as client:
        client.ping()
        assert "short-lived" in echo.server.peers
        wait_for(lambda: "short-lived" in lost, 5, "peer expiry")
    assert "short-lived" not in echo.server.peers


def test_heartbeat_thread_tracks_server_liveness():
    e = EchoThread()
    hb = Heartbeat(e.endpoint, name="hb", interval_s=0.1, timeout_s=0.4).start()
    try:
        wait_for(lambda: hb.alive, 5, "first pong")
        e.close()
        wait_for(lambda: not hb.alive, 5, "server seen dead")
    finally:
        hb.stop()


def test_peer_table_unit():
    t = PeerTable(timeout_s=1.0)
    assert t.touch("a", now=0.0) and not t.touch("a", now=0.5)
    t.touch("b", now=0.9)
    assert t.expire(now=1.6) == ["a"] and t.alive() == ["b"]


def test_server_survives_garbage_and_truncated_frames(echo):
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(echo.endpoint)
    good = [bytes(f) for f in encode("obs", {"a": np.ones((4, 4), np.float32)}, sender="raw")]
    bad_inputs = [
        [b"\x00\xff\x13garbage"],
        [b""],
        [b"GET / HTTP/1.1\r\n\r\n"],
        good[:1],  # truncated: array frame missing
        [good[0], good[1][:10]],  # truncated array frame
        [msgpack.packb({"v": SCHEMA_VERSION, "k": "obs"})],
        [np.random.default_rng(0).bytes(5000)] * 3,
    ]
    for frames in bad_inputs:
        raw.send_multipart(frames)
    wait_for(lambda: echo.server.stats.n_malformed >= len(bad_inputs), 5, "all bad inputs counted")
    raw.close()
    with RpcClient(echo.endpoint, name="after-garbage") as client:
        msg = client.call("act_request", {"x": np.ones(3)})
    assert msg.kind == "act"
    assert echo.server.stats.n_malformed == len(bad_inputs) and echo.thread.is_alive()


def test_schema_version_mismatch_client_gets_clear_error(echo):
    with RpcClient(echo.endpoint, name="future-robot") as client:
        with pytest.raises(SchemaVersionError, match=r"speaks v1, this side speaks v2"):
            client.call("obs", {"x": np.ones(2)}, version=SCHEMA_VERSION + 1)
        assert client.call("obs", {"x": np.ones(2)}).kind == "obs"  # same client, right version: fine
    assert echo.server.stats.n_version_errors == 1


def test_client_times_out_when_nobody_listens():
    port = free_port()
    with RpcClient(f"tcp://127.0.0.1:{port}", name="lonely", timeout_s=0.1, retries=1) as client:
        t0 = time.monotonic()
        with pytest.raises(PeerTimeout, match="2 attempts"):
            client.call("obs")
        assert time.monotonic() - t0 < 2.0
        assert client.n_reconnects == 1


def test_late_reply_to_abandoned_request_is_ignored():
    server = RpcServer("tcp://127.0.0.1:*", name="slow")
    client = RpcClient(server.endpoint, name="c", timeout_s=0.2, retries=0)
    try:
        with pytest.raises(PeerTimeout):
            client.call("obs", None, {"n": 1})
        # DEALER keeps its connection; the server now answers request 1 late, then request 2
        req1 = server.recv(1.0)
        assert req1 is not None and req1.msg.meta == {"n": 1}
        server.reply(req1, "obs", None, {"n": 1})
        got = {}

        def call2():
            got["msg"] = client.call("obs", None, {"n": 2}, timeout_s=3.0)

        t = threading.Thread(target=call2)
        t.start()
        req2 = server.recv(3.0)
        server.reply(req2, "obs", None, {"n": 2})
        t.join(5)
        assert got["msg"].meta == {"n": 2}
    finally:
        client.close()
        server.close()


def test_pubsub_latest_only_and_bounded():
    pub = Publisher("tcp://127.0.0.1:*", name="learner", hwm=2)
    sub = Subscriber(pub.endpoint, name="actor", hwm=2)
    try:
        # slow joiner: publish until the subscription is live
        wait_for(lambda: pub.publish("weights", None, {"version": -1}) and sub.latest(0.05) is not None, 5, "sub")
        big = np.ones(250_000, np.float32)  # 1 MB
        t0 = time.monotonic()
        for v in range(200):  # the application does not read meanwhile: 200 MB offered
            pub.publish("weights", {"w": big}, {"version": v})
        assert time.monotonic() - t0 < 10.0  # the publisher never blocked
        time.sleep(0.3)
        # a burst beyond the high-water mark is dropped at the publisher (bounded memory); what got
        # through is collapsed into one slot
        msg = sub.latest(1.0)
        assert msg is not None and 0 <= msg.meta["version"] <= 199
        assert sub.latest(0.0) is None  # older messages were not kept
        # the next publish after the burst (the learner republishes periodically) gets through
        pub.publish("weights", {"w": big}, {"version": 1000})
        msg = sub.latest(2.0)
        assert msg is not None and msg.meta["version"] == 1000
        np.testing.assert_array_equal(msg.arrays["w"][:3], [1, 1, 1])
    finally:
        sub.close()
        pub.close()


def test_subscriber_drops_malformed_messages():
    ctx = zmq.Context.instance()
    raw_pub = ctx.socket(zmq.PUB)
    raw_pub.setsockopt(zmq.LINGER, 0)
    port = raw_pub.bind_to_random_port("tcp://127.0.0.1")
    sub = Subscriber(f"tcp://127.0.0.1:{port}", name="s")
    try:
        good = encode("weights", {"w": np.ones(3)}, {"version": 5})

        end = time.monotonic() + 5
        msg = None
        while msg is None and time.monotonic() < end:  # repeat until the subscription is live
            raw_pub.send_multipart([b"junk", b"more junk"])
            raw_pub.send_multipart(good, copy=False)
            msg = sub.latest(0.1)
        assert msg is not None and msg.meta["version"] == 5
        assert sub.n_malformed >= 1
    finally:
        sub.close()
        raw_pub.close()


def test_client_reconnects_after_server_process_restart(tmp_path):
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    ready = tmp_path / "ready"
    p1 = spawn([str(HELPER), "--bind", endpoint, "--ready", str(ready)])
    p2 = None
    try:
        wait_for(ready.exists, 30, "echo server 1")
        client = RpcClient(endpoint, name="robot", timeout_s=0.5, retries=20)
        pids = [client.call("obs", {"i": np.array([i])}).meta["pid"] for i in range(5)]
        assert set(pids) == {p1.pid}
        stop(p1, timeout_s=5)
        ready.unlink()
        p2 = spawn([str(HELPER), "--bind", endpoint, "--ready", str(ready)])
        # mid-stream: calls keep going; the one in flight while no server runs is retried
        msg = client.call("obs", {"i": np.array([5])})
        assert msg.meta["pid"] == p2.pid
        np.testing.assert_array_equal(msg.arrays["i"], [5])
        assert client.call("obs", {"i": np.array([6])}).meta["pid"] == p2.pid
        client.close()
    finally:
        stop(p1)
        if p2 is not None:
            stop(p2)
