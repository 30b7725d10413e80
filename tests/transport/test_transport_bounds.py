"""Bounded decoding (issue 22): every size is checked against the header and the receiver's limits
before anything is allocated or decoded, and every malformed message is a `MessageError`."""

from __future__ import annotations

import math

import cv2
import msgpack
import numpy as np
import pytest
from transport_helpers import huge_jpeg

from robo.transport.codec import (
    ArraySchema,
    DecodeLimits,
    Message,
    MessageError,
    decode,
    encode,
    jpeg_dimensions,
    jpeg_encode,
)

FUZZ_CASES = 3000
"""Random corruptions of valid messages decoded by the fuzz (about a second)."""


def header(arrays, meta=None) -> bytes:
    return msgpack.packb({"v": 1, "k": "act_request", "q": 3, "s": "careless", "tc": 0.0, "ts": 0.0,
                          "m": meta or {}, "a": arrays})


@pytest.fixture
def no_imdecode(monkeypatch):
    """Fails the test if OpenCV is asked to decode anything."""
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(cv2, "imdecode", refuse)


def test_jpeg_dimensions_come_from_its_frame_header():
    assert jpeg_dimensions(jpeg_encode(np.zeros((48, 64, 3), np.uint8))) == (48, 64, 3)
    assert jpeg_dimensions(huge_jpeg(16000, 12000)) == (16000, 12000, 3)
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    truncated = jpeg_encode(np.zeros((8, 8, 3), np.uint8))[:20]
    for bad in (b"", b"\xff\xd8", png.tobytes(), b"\xff\xd8\xff\xe0\x00\x02" * 3, truncated):
        with pytest.raises(MessageError):
            jpeg_dimensions(bad)


def test_a_huge_declared_image_is_refused_before_decoding(no_imdecode):
    bomb = huge_jpeg()
    assert len(bomb) < 1000  # bytes on the wire; decoded it would be 768 MB
    with pytest.raises(MessageError, match="16000x16000 px, limit 16777216 px"):
        decode([header([["observation.images.front", "uint8", [1, 1, 16000, 16000, 3], "jpeg", 1]]), bomb])
    # the header lies about the size: the JPEG's own frame header is read before OpenCV sees it
    with pytest.raises(MessageError, match="declares 16000x16000, header says \\(48, 64, 3\\)"):
        decode([header([["observation.images.front", "uint8", [1, 1, 48, 64, 3], "jpeg", 1]]), bomb])
    # and a schema that knows the camera refuses another size before anything else
    limits = DecodeLimits(arrays={"observation.images.front": ArraySchema("uint8", (None, 2, 48, 64, 3))})
    with pytest.raises(MessageError, match="expected uint8 \\(\\*, 2, 48, 64, 3\\)"):
        decode([header([["observation.images.front", "uint8", [1, 2, 4000, 4000, 3], "jpeg", 2]]), bomb, bomb],
               limits=limits)


def test_a_non_jpeg_frame_is_never_handed_to_opencv(no_imdecode):
    ok, png = cv2.imencode(".png", np.zeros((4000, 4000, 3), np.uint8))  # OpenCV would decode a PNG
    with pytest.raises(MessageError, match="SOI"):
        decode([header([["im", "uint8", [4000, 4000, 3], "jpeg", 1]]), png.tobytes()])


def test_the_decoded_size_of_a_message_is_bounded():
    small = DecodeLimits(max_bytes=10_000)
    raw = encode("obs", {"x": np.zeros(4000, np.float32)})  # 16 kB
    with pytest.raises(MessageError, match="more than 10000 bytes"):
        decode([bytes(f) for f in raw], limits=small)
    img = np.zeros((1, 3, 48, 64, 3), np.uint8)  # 27 kB decoded from a few hundred bytes of JPEG
    frames = [bytes(f) for f in encode("obs", {"observation.images.a": img}, jpeg_quality=50)]
    assert sum(map(len, frames)) < 10_000
    with pytest.raises(MessageError, match="more than 10000 bytes"):
        decode(frames, limits=small)
    assert decode(frames).arrays["observation.images.a"].shape == img.shape  # the default limit admits it


def test_a_schema_names_what_a_receiver_reads_and_the_rest_is_skipped_undecoded(no_imdecode):
    limits = DecodeLimits(arrays={"observation.state": ArraySchema("float32", (None, 2, 3))})
    state = np.ones((4, 2, 3), np.float32)
    img = np.zeros((4, 2, 8, 8, 3), np.uint8)
    frames = [bytes(f) for f in encode("act_request", {"observation.state": state, "observation.images.x": img},
                                       jpeg_quality=80)]
    msg = decode(frames, limits=limits)  # the JPEGs of an array nobody reads are never decoded
    assert list(msg.arrays) == ["observation.state"] and msg.arrays["observation.state"].shape == (4, 2, 3)
    for bad in (state.astype(np.float64), state[:, :1], state.reshape(4, 6)):
        with pytest.raises(MessageError, match="array 'observation.state'"):
            decode([bytes(f) for f in encode("act_request", {"observation.state": bad})], limits=limits)


@pytest.mark.parametrize("depth", [33, 2_000, 100_000])
def test_deep_nesting_is_a_message_error(depth):
    # meta {"x": [[[...]]]}, `depth` one-element lists deep, written as raw msgpack (packb would recurse)
    rest = msgpack.packb({"v": 1, "k": "obs", "q": 0, "s": "", "tc": 0.0, "ts": 0.0, "a": []})
    assert rest[0] == 0x87  # a map of 7 entries; the frame gets an 8th, "m"
    frame = b"\x88" + rest[1:] + msgpack.packb("m") + b"\x81" + msgpack.packb("x") + b"\x91" * depth + b"\xc0"
    with pytest.raises(MessageError, match="nested deeper than 32 levels"):
        decode([frame])


def test_shallow_meta_still_decodes():
    value: object = 1
    for _ in range(31):
        value = [value]
    msg = decode([bytes(f) for f in encode("obs", None, {"deep": value})])
    assert msg.meta["deep"] == value


def test_fuzzed_messages_decode_or_raise_message_error_only():
    """Byte flips, truncations, duplicated or dropped frames, random header values and deeply nested
    meta in valid messages: each one decodes or raises MessageError, nothing else."""
    rng = np.random.default_rng(22)
    base = [
        [bytes(f) for f in encode("act_request", {"observation.state": np.ones((2, 2, 3), np.float32),
                                                   "observation.images.a": np.zeros((2, 2, 16, 16, 3), np.uint8)},
                                  {"k": [1, {"x": 2.5}]}, jpeg_quality=70)],
        [bytes(f) for f in encode("weights", {"w": np.arange(50, dtype=np.float64), "b": np.zeros(3, np.int8)})],
    ]
    outcomes = {"ok": 0, "error": 0}
    limits = DecodeLimits(max_bytes=1 << 20, max_image_pixels=1 << 12)
    for _ in range(FUZZ_CASES):
        frames = [bytearray(f) for f in base[rng.integers(len(base))]]
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(frames)))
            op = rng.integers(6)
            if op == 0 and frames[i]:  # flip bytes
                for j in rng.integers(0, len(frames[i]), int(rng.integers(1, 8))):
                    frames[i][j] = int(rng.integers(256))
            elif op == 1:  # truncate
                frames[i] = frames[i][: int(rng.integers(0, len(frames[i]) + 1))]
            elif op == 2:  # drop or duplicate a frame
                frames = frames[:i] + frames[i + 1 :] if rng.uniform() < 0.5 else frames[: i + 1] + frames[i:]
            elif op == 3:  # rewrite a header field with a random value
                try:
                    h = msgpack.unpackb(bytes(frames[0]))
                    key = ["k", "q", "s", "tc", "m", "a", "v"][int(rng.integers(7))]
                    values = [None, -1, 2**40, "x" * 5, [], {}, [[1] * 3], math.inf,
                              [["a", "uint8", [2**30, 2**30, 3], "jpeg", 1]]]
                    h[key] = values[int(rng.integers(len(values)))]
                    frames[0] = bytearray(msgpack.packb(h))
                except Exception:  # noqa: BLE001 - the header was already corrupted: leave it
                    pass
            elif op == 4:  # random garbage frame
                frames[i] = bytearray(rng.bytes(int(rng.integers(0, 64))))
            else:  # meta nested 1 to 5000 levels deep
                rest = msgpack.packb({"v": 1, "k": "obs", "q": 0, "s": "", "tc": 0.0, "ts": 0.0, "a": []})
                depth = int(rng.integers(1, 5000))
                frames[0] = bytearray(b"\x88" + rest[1:] + b"\xa1m\x81\xa1x" + b"\x91" * depth + b"\xc0")
            if not frames:
                frames = [bytearray()]
        try:
            msg = decode([bytes(f) for f in frames], limits=limits)
        except MessageError:
            outcomes["error"] += 1
        else:
            assert isinstance(msg, Message)
            outcomes["ok"] += 1
    assert outcomes["error"] > FUZZ_CASES // 2 and outcomes["ok"] > 0


# ----------------------------------------------------------------------------------------- sockets
@pytest.mark.timeout(60)
def test_a_server_drops_oversized_frames_on_the_socket_and_keeps_serving():
    """A frame larger than the limit never reaches memory (libzmq's MAXMSGSIZE drops the peer); a
    request its limits refuse gets an "error" reply; other clients are answered throughout."""
    import threading

    import zmq

    from robo.transport import RemoteError, RpcClient, RpcServer

    server = RpcServer("tcp://127.0.0.1:*", name="bounded", limits=DecodeLimits(max_bytes=1 << 16))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            req = server.recv(0.05)
            if req is not None:
                server.reply(req, "ack", None, {"n": len(req.msg.arrays)})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(server.endpoint)
        big = [bytes(f) for f in encode("transitions", {"x": np.zeros(1 << 18, np.uint8)}, sender="flood")]
        for _ in range(5):
            raw.send_multipart(big)
        with RpcClient(server.endpoint, name="polite", timeout_s=2.0) as client:
            assert client.call("transitions", {"x": np.zeros(100, np.uint8)}).meta == {"n": 1}
            img = np.zeros((1, 3, 96, 96, 3), np.uint8)  # a few kB of JPEG on the wire, 83 kB decoded
            with pytest.raises(RemoteError, match=r"\[malformed\].*more than 65536 bytes"):
                client.call("transitions", {"observation.images.x": img}, retries=0, jpeg_quality=50)
            assert client.call("transitions", {"x": np.zeros(100, np.uint8)}).meta == {"n": 1}
        raw.close()
        assert server.stats.n_requests == 2 and server.stats.n_malformed == 1  # the flood never arrived
    finally:
        stop.set()
        thread.join(5)
        server.close()
