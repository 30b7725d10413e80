"""Wire format: a msgpack header frame plus raw array frames. No pickle, ever.

A message is a ZMQ multipart list::

    frame 0   msgpack map {"v": SCHEMA_VERSION, "k": kind, "q": seq, "s": sender,
                           "tc": t_capture, "ts": t_send, "m": meta,
                           "a": [[name, dtype, shape, encoding, n_frames], ...]}
    frame 1.. one frame per array ("raw": its C-contiguous bytes), or one JPEG per image
              (encoding "jpeg": uint8 arrays shaped (..., H, W, 3), one frame per (H, W, 3) image)

Times are `time.time()` seconds (wall clock, comparable across hosts under chrony/PTP). `meta` holds
msgpack-native values only (str, int, float, bool, None, bytes, lists, str-keyed maps).

Zero copy: `encode` puts the (C-contiguous) arrays themselves in the frame list, sent with `copy=False`,
so an array must not be modified until the send completes. `decode` wraps received `zmq.Frame` buffers
in arrays without copying; such arrays are read-only (copy them to modify).

Decoding is defensive: any malformed input raises `MessageError` (never another exception type), a
peer speaking another schema version raises `SchemaVersionError`. Servers log and drop both. Every
size is checked before anything is allocated or decoded: the header's byte count and nesting depth,
each array's byte count against its frame, the declared decoded total and each JPEG's pixel count
against `DecodeLimits` (and, when the receiver gives one, each array's dtype and shape against its
`ArraySchema`), and each JPEG's own frame header against the declared shape, before OpenCV sees it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import numpy as np
import zmq

__all__ = [
    "SCHEMA_VERSION",
    "KINDS",
    "ArraySchema",
    "DecodeLimits",
    "Message",
    "MessageError",
    "SchemaVersionError",
    "encode",
    "decode",
    "jpeg_dimensions",
    "jpeg_encode",
    "jpeg_decode",
]

SCHEMA_VERSION = 1

# Message kinds. Requests and their replies share a channel; "error" replies carry meta
# {"code": str, "message": str}.
KINDS = (
    "obs",  # observation stream (edge -> cloud)
    "act_request",  # RPC: observation window -> action chunk
    "act",  # RPC reply: action chunk (B, T, Da)
    "transitions",  # actor -> learner: a batch of transitions (one episode or part of it)
    "ack",  # reply to transitions
    "weights",  # learner -> actors: versioned state dict
    "weights_request",  # RPC: "send me weights newer than meta['version']"
    "config_request",  # RPC: actor -> learner, "which algorithm and config do I act with?"
    "config",  # reply: meta {"algo", "config"}
    "heartbeat",  # liveness ping / pong
    "error",  # any error reply
)

_KIND_SET = frozenset(KINDS)

MAX_HEADER_BYTES = 1 << 20
MAX_ARRAYS = 4096
MAX_META_DEPTH = 32
"""Deepest nesting of lists/maps in a header's meta (msgpack allows any; Python's stack does not)."""
MAX_MESSAGE_BYTES = 256 << 20
"""Default bound on one message: every frame received and every array decoded, together (bytes)."""
MAX_IMAGE_PIXELS = 1 << 24
"""Default bound on one JPEG image, height x width (4096 x 4096 px, 48 MiB decoded)."""
_DTYPES = frozenset(
    ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
    + ["float16", "float32", "float64"]
)
_NATIVE = {np.dtype(n): n for n in _DTYPES}  # native-byte-order dtype -> wire name (fast lookup)
_FROM_WIRE = {n: np.dtype(n) for n in _DTYPES}


class MessageError(ValueError):
    """A frame list that is not a valid robo message (garbage, truncated, inconsistent)."""


class SchemaVersionError(MessageError):
    """The peer speaks a different schema version; upgrade one side."""

    def __init__(self, peer_version: Any, sender: str = "?", seq: int = 0, local_version: Any = None) -> None:
        self.peer_version = peer_version
        self.sender = sender
        self.seq = seq
        local = SCHEMA_VERSION if local_version is None else local_version
        super().__init__(
            f"schema version mismatch: peer '{sender}' speaks v{peer_version}, this side speaks "
            f"v{local}; run the same robo version on both sides"
        )


@dataclass
class Message:
    """A decoded message. `arrays` may be read-only views of the received frames."""

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    sender: str = ""
    t_capture: float = 0.0
    t_send: float = 0.0
    t_recv: float = 0.0
    version: int = SCHEMA_VERSION


# The header's schema, checked by msgspec's msgpack decoder in C (types, enums, bounds), so the per-message
# Python work is the arrays' byte counts only. The wire is plain msgpack either way.
_Dim = Annotated[int, msgspec.Meta(ge=0, lt=2**31)]


class ArrayDescriptor(msgspec.Struct, array_like=True, frozen=True):
    """One array of a message, on the wire as [name, dtype, shape, encoding, n_frames]."""

    name: str
    dtype: Literal[tuple(sorted(_DTYPES))]  # type: ignore[valid-type]
    shape: Annotated[list[_Dim], msgspec.Meta(max_length=64)]
    encoding: Literal["raw", "jpeg"]
    n_frames: Annotated[int, msgspec.Meta(ge=1)]


class Header(msgspec.Struct, frozen=True):
    """Frame 0 of every message (field names are the wire keys)."""

    v: int  # schema version
    k: Literal[KINDS]  # type: ignore[valid-type]
    q: int  # sequence number
    s: str  # sender
    tc: float  # capture time
    ts: float  # send time
    m: dict[str, Any]  # meta
    a: Annotated[list[ArrayDescriptor], msgspec.Meta(max_length=MAX_ARRAYS)]


_HEADER_DECODER = msgspec.msgpack.Decoder(Header)
_ENCODER = msgspec.msgpack.Encoder()


class ArraySchema(NamedTuple):
    """What a receiver accepts for one array: its dtype name and shape (None = any size on that axis)."""

    dtype: str
    shape: tuple[int | None, ...]

    def check(self, name: str, dtype: str, shape: Sequence[int]) -> None:
        if dtype != self.dtype or len(shape) != len(self.shape) or any(
            want is not None and got != want for got, want in zip(shape, self.shape)
        ):
            want = "(" + ", ".join("*" if d is None else str(d) for d in self.shape) + ")"
            raise MessageError(f"array '{name}': {dtype} {list(shape)}, expected {self.dtype} {want}")


@dataclass(frozen=True)
class DecodeLimits:
    """What one received message may hold. Checked against the header, before any frame is decoded."""

    max_bytes: int = MAX_MESSAGE_BYTES
    """every frame of the message and every array it decodes to, together (bytes); also the sockets'
    per-frame ZMQ_MAXMSGSIZE, so a larger frame never reaches memory"""
    max_image_pixels: int = MAX_IMAGE_PIXELS
    """one JPEG image, height x width (px)"""
    arrays: Mapping[str, ArraySchema] | None = None
    """the arrays a receiver reads, by name (dtype and shape); others are skipped undecoded. None = any"""

    def __post_init__(self) -> None:
        if not (isinstance(self.max_bytes, int) and self.max_bytes > 0):
            raise ValueError(f"max_bytes={self.max_bytes!r} must be an integer > 0 (bytes)")
        if not (isinstance(self.max_image_pixels, int) and self.max_image_pixels > 0):
            raise ValueError(f"max_image_pixels={self.max_image_pixels!r} must be an integer > 0 (px)")


DEFAULT_LIMITS = DecodeLimits()


# ----------------------------------------------------------------------------------------- JPEG
def jpeg_encode(image_rgb: np.ndarray, quality: int = 90) -> bytes:
    """Encode one (H, W, 3) uint8 RGB image as JPEG bytes (OpenCV)."""
    import cv2

    bgr = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


# Frame-header markers of the JPEG processes OpenCV's libjpeg decodes: baseline, extended, progressive.
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2))
# Markers without a length field (TEM, RST0..7) besides SOI; EOI and SOS end the header part.
_STANDALONE = frozenset((0x01, *range(0xD0, 0xD8)))


def jpeg_dimensions(data: bytes | memoryview) -> tuple[int, int, int]:
    """(height, width, components) from a JPEG's frame header, read without decoding; `MessageError`
    when the bytes are not a JPEG OpenCV would decode as such (another format, no or a bad frame header)."""
    b = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    n = len(b)
    if n < 4 or b[0] != 0xFF or b[1] != 0xD8:
        raise MessageError("JPEG frame does not start with a JPEG marker (SOI)")
    i = 2
    while i + 4 <= n:
        if b[i] != 0xFF:
            raise MessageError(f"JPEG frame: no marker at byte {i}")
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            break
        length = (b[i + 2] << 8) | b[i + 3]
        if length < 2 or i + 2 + length > n:
            raise MessageError(f"JPEG frame: segment at byte {i} overruns the frame")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header (SOFn)
            if marker not in _SOF_MARKERS:
                raise MessageError(f"JPEG frame: unsupported coding process (SOF{marker - 0xC0})")
            if length < 8:
                raise MessageError("JPEG frame: truncated frame header")
            h, w, nc = (b[i + 5] << 8) | b[i + 6], (b[i + 7] << 8) | b[i + 8], b[i + 9]
            if h == 0 or w == 0 or nc not in (1, 3):
                raise MessageError(f"JPEG frame: unsupported frame header ({h}x{w}, {nc} components)")
            return h, w, nc
        i += 2 + length
    raise MessageError("JPEG frame has no frame header (SOF)")


def jpeg_decode(data: bytes | memoryview, shape: Sequence[int] | None = None) -> np.ndarray:
    """Decode JPEG bytes to an (H, W, 3) uint8 RGB image; `MessageError` on bad data or shape.

    With `shape`, the JPEG's own frame header must declare that (H, W) before anything is decoded."""
    import cv2

    if shape is not None:
        h, w, _ = jpeg_dimensions(data)
        if (h, w, 3) != tuple(shape):
            raise MessageError(f"JPEG frame declares {h}x{w}, header says {tuple(shape)}")
    arr = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(arr, cv2.IMREAD_COLOR) if arr.size else None
    if bgr is None:
        raise MessageError("undecodable JPEG frame")
    if shape is not None and tuple(bgr.shape) != tuple(shape):
        raise MessageError(f"JPEG frame decodes to {bgr.shape}, header says {tuple(shape)}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _jpeg_ok(name: str, a: np.ndarray) -> bool:
    """Colour images only: uint8 (..., H, W, 3), never depth."""
    return a.dtype == np.uint8 and a.ndim >= 3 and a.shape[-1] == 3 and "depth" not in name.lower()


# ----------------------------------------------------------------------------------------- encode
def encode(
    kind: str,
    arrays: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    seq: int = 0,
    sender: str = "",
    t_capture: float | None = None,
    jpeg_quality: int | None = None,
    jpeg_keys: Sequence[str] | None = None,
    version: int = SCHEMA_VERSION,
) -> list[Any]:
    """Build the frame list for one message (send with `send_multipart(frames, copy=False)`).

    `arrays` values are numpy arrays (or torch CPU tensors, converted without copying when possible).
    With `jpeg_quality`, colour images (uint8 (..., H, W, 3) whose key does not contain "depth")
    among `jpeg_keys` (default: keys starting with "observation.images.") are JPEG-encoded.
    """
    if kind not in _KIND_SET:
        raise ValueError(f"unknown message kind {kind!r} (known: {', '.join(KINDS)})")
    descs: list[list[Any]] = []
    frames: list[Any] = [b""]
    for name, value in (arrays or {}).items():
        a = value if type(value) is np.ndarray else _as_array(value)
        wire = _NATIVE.get(a.dtype)
        if wire is None:
            if a.dtype.name not in _DTYPES:
                raise ValueError(f"array '{name}': dtype {a.dtype} cannot be sent (allowed: {sorted(_DTYPES)})")
            a = a.astype(a.dtype.newbyteorder("="))  # non-native byte order -> native
            wire = a.dtype.name
        if jpeg_quality is not None and (
            (name in jpeg_keys if jpeg_keys is not None else name.startswith("observation.images."))
            and _jpeg_ok(name, a)
        ):
            images = a.reshape(-1, *a.shape[-3:])
            descs.append([name, "uint8", list(a.shape), "jpeg", len(images)])
            frames.extend(jpeg_encode(img, jpeg_quality) for img in images)
        else:
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
            descs.append([name, wire, list(a.shape), "raw", 1])
            frames.append(a if a.size else b"")  # pyzmq sends the array's own buffer
    now = time.time()
    header = {
        "v": version,
        "k": kind,
        "q": int(seq),
        "s": sender,
        "tc": now if t_capture is None else float(t_capture),
        "ts": now,
        "m": dict(meta or {}),
        "a": descs,
    }
    try:
        frames[0] = _ENCODER.encode(header)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"message meta is not msgpack-serialisable: {e}") from None
    return frames


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch tensor: share memory when on CPU
        t = value.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        return t.numpy()
    return np.asarray(value)


# ----------------------------------------------------------------------------------------- decode
def _buf(frame: Any) -> memoryview:
    """A flat byte view of one frame: a received `zmq.Frame`, or anything with the buffer protocol."""
    if type(frame) is zmq.Frame:
        return frame.buffer
    try:
        view = memoryview(frame)
    except TypeError:
        buf = getattr(frame, "buffer", None)  # a zmq.Frame subclass
        if buf is None:
            raise MessageError(f"frame of type {type(frame).__name__} is not bytes") from None
        return buf
    if view.ndim == 1 and view.itemsize == 1:
        return view
    if not view.c_contiguous:
        raise MessageError(f"frame of type {type(frame).__name__} is not contiguous")
    return view.cast("B")


def decode_header(frame: Any) -> Header:
    """Parse and validate frame 0; a peer on another schema version gets `SchemaVersionError`."""
    raw = _buf(frame)
    if len(raw) == 0 or len(raw) > MAX_HEADER_BYTES:
        raise MessageError(f"header frame of {len(raw)} bytes")
    try:
        header = _HEADER_DECODER.decode(raw)
    except msgspec.ValidationError as e:  # msgpack, but not this schema's header: maybe another version's
        _raise_if_other_version(raw)
        raise MessageError(f"invalid message header: {e}") from None
    except msgspec.DecodeError:
        raise MessageError("header is not msgpack") from None
    except RecursionError:  # msgspec stops at the interpreter's recursion limit
        raise MessageError(f"header nested deeper than {MAX_META_DEPTH} levels") from None
    if header.v != SCHEMA_VERSION:
        raise SchemaVersionError(header.v, header.s, header.q)
    if header.m and _depth(header.m) > MAX_META_DEPTH:
        raise MessageError(f"header meta nested deeper than {MAX_META_DEPTH} levels")
    return header


def _depth(value: Any) -> int:
    """Nesting depth of lists/maps in a decoded meta value (a scalar is 0), iteratively."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if children is None:
            continue
        if d > deepest:
            deepest = d
            if d > MAX_META_DEPTH:
                return d
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _raise_if_other_version(raw: memoryview) -> None:
    try:
        loose = msgspec.msgpack.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return
    if isinstance(loose, dict) and "v" in loose and loose["v"] != SCHEMA_VERSION:
        seq = loose.get("q")
        raise SchemaVersionError(loose["v"], str(loose.get("s", "?")), seq if isinstance(seq, int) else 0)


def decode(frames: Sequence[Any], *, t_recv: float | None = None, limits: DecodeLimits = DEFAULT_LIMITS) -> Message:
    """Decode a frame list (bytes or `zmq.Frame`s) into a `Message`; `MessageError` if malformed.

    Every array is checked against the header and `limits` (sizes, and the receiver's `ArraySchema`s
    when it names them) before any array is decoded; arrays `limits.arrays` does not name are skipped.
    """
    if len(frames) == 0:
        raise MessageError("empty message")
    header = decode_header(frames[0])
    arrays: dict[str, np.ndarray] = {}
    for desc, bufs in _plan(header, frames, limits):
        if desc.encoding == "raw":
            # a read-only view of the received frame (copy it to modify)
            arrays[desc.name] = np.ndarray(desc.shape, _FROM_WIRE[desc.dtype], bufs[0].toreadonly())
        else:
            images = [jpeg_decode(b, desc.shape[-3:]) for b in bufs]
            arrays[desc.name] = np.stack(images).reshape(desc.shape)
    return Message(
        kind=header.k,
        arrays=arrays,
        meta=header.m,
        seq=header.q,
        sender=header.s,
        t_capture=header.tc,
        t_send=header.ts,
        t_recv=time.time() if t_recv is None else t_recv,
        version=header.v,
    )


def _plan(
    header: Header, frames: Sequence[Any], limits: DecodeLimits
) -> list[tuple[ArrayDescriptor, list[memoryview]]]:
    """(descriptor, its frames' buffers) of each array to decode, once every size in the message checks out."""
    plan = []
    total = len(_buf(frames[0]))  # bytes received plus bytes the JPEGs will decode to
    i = 1
    for desc in header.a:
        name, shape, n = desc.name, desc.shape, desc.n_frames
        if i + n > len(frames):
            raise MessageError(f"array '{name}': message truncated ({len(frames)} frames)")
        bufs = [_buf(frames[j]) for j in range(i, i + n)]
        size = math.prod(shape) * _FROM_WIRE[desc.dtype].itemsize
        if desc.encoding == "raw":
            if n != 1:
                raise MessageError(f"array '{name}': raw arrays use one frame, header says {n}")
            if len(bufs[0]) != size:
                raise MessageError(f"array '{name}': frame has {len(bufs[0])} bytes, {shape} {desc.dtype} needs {size}")
            total += size
        else:
            if desc.dtype != "uint8" or len(shape) < 3 or shape[-1] != 3 or math.prod(shape[:-3]) != n:
                raise MessageError(f"array '{name}': bad JPEG descriptor {desc!r:.80}")
            if shape[-3] * shape[-2] > limits.max_image_pixels:
                raise MessageError(
                    f"array '{name}': JPEG images of {shape[-3]}x{shape[-2]} px, limit {limits.max_image_pixels} px"
                )
            total += sum(len(b) for b in bufs)
        if limits.arrays is None or name in limits.arrays:
            if limits.arrays is not None:
                limits.arrays[name].check(name, desc.dtype, shape)
            total += size if desc.encoding == "jpeg" else 0
            plan.append((desc, bufs))
        if total > limits.max_bytes:
            raise MessageError(f"message of more than {limits.max_bytes} bytes (at array '{name}')")
        i += n
    if i != len(frames):
        raise MessageError(f"message has {len(frames)} frames, header describes {i}")
    return plan
