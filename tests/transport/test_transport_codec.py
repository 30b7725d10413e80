"""Codec: msgpack header + raw frames, JPEG option, defensive decoding, schema version."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
import torch

from robo.transport.codec import (
    KINDS,
    SCHEMA_VERSION,
    MessageError,
    SchemaVersionError,
    decode,
    encode,
    jpeg_decode,
    jpeg_encode,
)


def as_bytes(frames):
    return [bytes(f) for f in frames]


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "observation.state": rng.normal(size=(1, 2, 9)).astype(np.float32),
        "observation.images.wrist": rng.integers(0, 255, (1, 2, 8, 8, 3), dtype=np.uint8),
        "mask": np.array([True, False]),
        "idx": np.arange(5, dtype=np.int64),
        "half": np.ones((3,), np.float16),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.float64(3.5),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_every_kind(kind):
    arrays = sample_arrays()
    meta = {"version": 3, "note": "x", "nested": {"a": [1, 2.5, None]}, "blob": b"\x00\x01"}
    frames = encode(kind, arrays, meta, seq=42, sender="edge-1", t_capture=123.25)
    msg = decode(as_bytes(frames))
    assert msg.kind == kind and msg.seq == 42 and msg.sender == "edge-1"
    assert msg.t_capture == 123.25 and msg.t_send >= 123.25 and msg.t_recv >= msg.t_send - 1.0
    assert msg.meta == meta and msg.version == SCHEMA_VERSION
    assert set(msg.arrays) == set(arrays)
    for k, a in arrays.items():
        np.testing.assert_array_equal(msg.arrays[k], a)
        assert msg.arrays[k].dtype == np.asarray(a).dtype and msg.arrays[k].shape == np.asarray(a).shape


def test_frames_are_the_arrays_own_buffers_and_decode_is_a_view():
    a = np.arange(100_000, dtype=np.float32)
    frames = encode("obs", {"x": a})
    assert frames[1] is a  # no copy on send: pyzmq sends the array's own buffer
    buf = bytearray(bytes(frames[1]))
    msg = decode([bytes(frames[0]), buf])
    assert np.shares_memory(msg.arrays["x"], np.frombuffer(buf, np.uint8))  # no copy on receive


def test_non_contiguous_big_endian_and_torch_inputs():
    base = np.arange(12, dtype=">f4").reshape(3, 4)
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    msg = decode(as_bytes(encode("weights", {"t": base.T, "w": t})))
    np.testing.assert_array_equal(msg.arrays["t"], base.T.astype(np.float32))
    np.testing.assert_array_equal(msg.arrays["w"], t.numpy())


def test_jpeg_for_colour_images_only_never_depth():
    rng = np.random.default_rng(1)
    smooth = np.clip(np.linspace(0, 255, 64)[None, :, None] + rng.normal(0, 2, (48, 64, 3)), 0, 255).astype(np.uint8)
    arrays = {
        "observation.images.front": np.stack([smooth, smooth[::-1]])[None],  # (1, 2, 48, 64, 3)
        "observation.images.depth": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),  # named depth: raw
        "observation.images.depth16": rng.integers(0, 4000, (48, 64), dtype=np.uint16),
        "observation.state": np.ones(3, np.float32),
    }
    frames = encode("obs", arrays, jpeg_quality=90)
    header = msgpack.unpackb(frames[0])
    encs = {d[0]: d[3] for d in header["a"]}
    assert encs == {
        "observation.images.front": "jpeg",
        "observation.images.depth": "raw",
        "observation.images.depth16": "raw",
        "observation.state": "raw",
    }
    raw_size = arrays["observation.images.front"].nbytes
    jpeg_size = sum(len(f) for f in frames[1:3])
    assert jpeg_size < raw_size / 2  # actually compressed
    msg = decode(as_bytes(frames))
    front = msg.arrays["observation.images.front"]
    assert front.shape == (1, 2, 48, 64, 3) and front.dtype == np.uint8
    err = np.abs(front.astype(int) - arrays["observation.images.front"].astype(int)).mean()
    assert err < 4.0  # lossy but close; channel order preserved (RGB stays RGB)
    np.testing.assert_array_equal(msg.arrays["observation.images.depth"], arrays["observation.images.depth"])
    np.testing.assert_array_equal(msg.arrays["observation.images.depth16"], arrays["observation.images.depth16"])


def test_jpeg_keeps_rgb_channel_order():
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 250  # pure red
    out = jpeg_decode(jpeg_encode(img, 95))
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def good_frames():
    return as_bytes(encode("act_request", {"a": np.ones((2, 3), np.float32), "b": np.zeros(4, np.uint8)}))


def mutate_header(frames, **changes):
    h = msgpack.unpackb(frames[0])
    h.update(changes)
    return [msgpack.packb(h), *frames[1:]]


@pytest.mark.parametrize(
    "make",
    [
        lambda: [],
        lambda: [b""],
        lambda: [b"\xff\xfe garbage"],
        lambda: [b"GET / HTTP/1.1\r\n\r\n"],
        lambda: [msgpack.packb([1, 2, 3])],
        lambda: [msgpack.packb({"hello": 1})],
        lambda: good_frames()[:2],  # truncated: one array frame missing
        lambda: good_frames() + [b"extra"],
        lambda: [good_frames()[0], good_frames()[1][:-1], good_frames()[2]],  # short frame
        lambda: mutate_header(good_frames(), k="exec_code"),
        lambda: mutate_header(good_frames(), a=[["a", "object", [2, 3], "raw", 1], ["b", "uint8", [4], "raw", 1]]),
        lambda: mutate_header(good_frames(), a=[["a", "float32", [-2, 3], "raw", 1], ["b", "uint8", [4], "raw", 1]]),
        lambda: mutate_header(good_frames(), a=[["a", "float32", [2, 3], "pickle", 1], ["b", "uint8", [4], "raw", 1]]),
        lambda: mutate_header(good_frames(), a="nope"),
        lambda: mutate_header(good_frames(), q="1"),
        lambda: mutate_header(good_frames(), m=[1]),
        lambda: [
            msgpack.packb(
                {
                    "v": 1,
                    "k": "obs",
                    "q": 0,
                    "s": "",
                    "tc": 0.0,
                    "ts": 0.0,
                    "m": {},
                    "a": [["im", "uint8", [4, 4, 3], "jpeg", 1]],
                }
            ),
            b"not a jpeg",
        ],
    ],
)
def test_malformed_input_raises_message_error_only(make):
    with pytest.raises(MessageError):
        decode(make())


def test_schema_version_mismatch_is_a_clear_error():
    frames = as_bytes(encode("obs", {"x": np.ones(2)}, version=SCHEMA_VERSION + 1, sender="old-robot", seq=7))
    with pytest.raises(SchemaVersionError, match=r"peer 'old-robot' speaks v2, this side speaks v1") as e:
        decode(frames)
    assert e.value.peer_version == SCHEMA_VERSION + 1 and e.value.seq == 7
    assert isinstance(e.value, MessageError)


def test_a_future_header_with_other_fields_is_still_a_version_error():
    # a v2 peer may rename or retype fields; the version, not the first schema complaint, is the news
    h = msgpack.unpackb(good_frames()[0])
    h.update(v=SCHEMA_VERSION + 1, q="seq-as-text", s="new-robot")
    del h["tc"]
    with pytest.raises(SchemaVersionError, match=r"peer 'new-robot' speaks v2"):
        decode([msgpack.packb(h), *good_frames()[1:]])


@pytest.mark.parametrize(
    "changes, where",
    [({"q": "1"}, r"\$\.q"), ({"a": [["a", "float32", [2, -3], "raw", 1]]}, r"\$\.a\[0\]\[2\]\[1\]")],
)
def test_header_errors_name_the_offending_field(changes, where):
    with pytest.raises(MessageError, match=where):
        decode(mutate_header(good_frames(), **changes))


def test_encode_refuses_unknown_kind_object_arrays_and_bad_meta():
    with pytest.raises(ValueError, match="unknown message kind"):
        encode("pickle", {})
    with pytest.raises(ValueError, match="dtype object"):
        encode("obs", {"x": np.array([object()])})
    with pytest.raises(ValueError, match="msgpack"):
        encode("obs", None, {"f": object()})
