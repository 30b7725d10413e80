"""MP4 encode/decode for camera streams with PyAV.

Frames are uint8 RGB arrays shaped (N, H, W, 3). Encoding defaults to libx264 + yuv420p (fast,
plays everywhere; ~6 ms per 128x128 frame on the project's CPUs); libsvtav1 is accepted as well
(LeRobot's default codec). yuv420p needs even sides, so odd-sized frames are edge-padded on encode
and cropped back on decode when `shape` is given. Frame i has pts i (time base 1/fps), so frame i is
at timestamp i / fps, matching the dataset's `timestamp` column.

`encode_video` writes to a temporary name in the target folder, fsyncs and `os.replace`s it into
place, so a reader (or a crash) never sees a partial file under the final name.

Encoding runs at the calling thread's normal priority whatever the codec (`normal_priority`):
libsvtav1, when the process may (root, CAP_SYS_NICE), switches the calling thread and its encoder
threads to SCHED_FIFO 99, which on a robot would outrank the control loop (FIFO 80) and, left behind,
kept a test process at FIFO 99 for the rest of the suite.

`decode_frames` decodes one range of frames: it seeks to the keyframe at or before the range and
decodes forward, so its frames are bit-identical to the same positions of `decode_video` (the
decoder restarts at a keyframe either way). With the GOP of 2 robo and LeRobot write, at most one
frame before the range is decoded and dropped.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from robo.data.atomic import atomic_path, fsync_path, tmp_name  # noqa: F401  (fsync_path, tmp_name: public here before)

#: codec name -> encoder option defaults. One x264 thread: with x264's automatic frame threads a
#: background encode starved a 30 Hz control loop on 2 cores (100 ms stalls, vs < 9 ms with one).
#: g=2 (LeRobot's GOP) keeps random access cheap for readers that seek.
CODEC_DEFAULTS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "crf": "18", "g": "2", "threads": "1"},
    "libsvtav1": {"preset": "10", "crf": "30", "g": "2"},
}
#: PyAV encoder name -> the codec name stored in info.json (what a decoder reports).
CODEC_NAMES = {"libx264": "h264", "libsvtav1": "av1"}


# ------------------------------------------------------------------------- real-time priority guard
_CAP_SYS_NICE = 23  # linux/capability.h
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc_capabilities() -> tuple[Any, Any] | None:
    """glibc's capget/capset (per-thread capability sets), or None off Linux."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.capget, libc.capset
    except (OSError, AttributeError):
        return None


_CAPS = _libc_capabilities()


def _set_sys_nice(enabled: bool) -> bool:
    """Raise or drop CAP_SYS_NICE in the calling thread's effective set; True if it was there before."""
    if _CAPS is None:
        return False
    capget, capset = _CAPS
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if capget(ctypes.byref(header), data) != 0:
        return False
    bit = 1 << _CAP_SYS_NICE
    had = bool(data[0].effective & bit)
    if enabled and data[0].permitted & bit:
        data[0].effective |= bit
    else:
        data[0].effective &= ~bit
    capset(ctypes.byref(header), data)
    return had


@contextmanager
def normal_priority() -> Iterator[None]:
    """Run the block so that no thread it starts can take a real-time policy and the calling thread
    leaves with the scheduling it came with.

    On Linux the calling thread gives up CAP_SYS_NICE for the block (threads started meanwhile, an
    encoder's, inherit that; its permitted set keeps it, so it is raised again afterwards), and its
    scheduling policy and priority are restored at the end in case the block changed them anyway (an
    RLIMIT_RTPRIO allowance needs no capability).
    """
    if not hasattr(os, "sched_getscheduler"):
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)  # 0: the calling thread
    had_nice = _set_sys_nice(False)
    try:
        yield
    finally:
        if had_nice:
            _set_sys_nice(True)
        if (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) != (policy, param.sched_priority):
            os.sched_setscheduler(0, policy, param)


def encode_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    fsync: bool = True,
) -> dict[str, Any]:
    """Encode `frames` (N, H, W, 3) uint8 RGB to an mp4 at `path` atomically.

    Returns LeRobot-style `info` fields for the feature (`video.codec`, `video.pix_fmt`, ...).
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"encode_video {path}: frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise ValueError(f"encode_video {path}: no frames")
    n, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:  # yuv420p wants even sides: repeat the last row/column, cropped on decode
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    opts = dict(CODEC_DEFAULTS.get(codec, {}))
    opts.update(options or {})
    rate = Fraction(fps).limit_denominator(1000)

    with normal_priority(), atomic_path(path, fsync=fsync) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=rate, options=opts)
            stream.width, stream.height = w + pad_w, h + pad_h
            stream.pix_fmt = pix_fmt
            stream.time_base = 1 / rate
            for i in range(n):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return {
        "video.height": h,
        "video.width": w,
        "video.codec": CODEC_NAMES.get(codec, codec),
        "video.pix_fmt": pix_fmt,
        "video.is_depth_map": False,
        "video.fps": float(fps),
        "video.channels": 3,
        "has_audio": False,
    }


def decode_video(path: str | Path, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """Decode every frame of the mp4 at `path` -> (N, H, W, 3) uint8 RGB.

    `shape` (H, W, 3) crops the even-padding added by `encode_video`. Raises ValueError (from
    `av.error.FFmpegError` or a shape mismatch) for unreadable files.
    """
    path = Path(path)
    out: list[np.ndarray] = []
    rgb = VideoReformatter()
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            out.append(_to_rgb(rgb, frame))
    if not out:
        raise ValueError(f"{path}: no video frames")
    return _crop(path, np.stack(out), shape)


def decode_frames(
    path: str | Path,
    start: int,
    stop: int,
    fps: float,
    shape: tuple[int, int, int] | None = None,
    *,
    threaded: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode frames `start`..`stop - 1` of the mp4 at `path` -> (stop - start, H, W, 3) uint8 RGB.

    A frame's position is its presentation time since the stream's first frame times `fps` (frame i
    at i / fps, as the dataset's timestamps say). `shape` (H, W, 3) crops as in `decode_video`.
    `threaded` lets FFmpeg decode with its own threads (worth it for long ranges in one thread; off
    where several threads each decode a block). `out`: an array of the result's shape to decode into
    (returned). Raises ValueError naming the file when frames are missing or the file is
    unreadable (av.error.FFmpegError is a ValueError).
    """
    path = Path(path)
    if not 0 <= start < stop:
        raise ValueError(f"{path}: frame range {start}..{stop} is empty or negative")
    n = 0
    reformatter = VideoReformatter()
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"
        tb = float(stream.time_base)
        t0 = stream.start_time or 0
        if start > 0:  # to the keyframe at or before `start`
            container.seek(t0 + int(start / fps / tb), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            pos = round((frame.pts - t0) * tb * fps)
            if pos < start:
                continue
            if pos != start + n:  # a seek past `start` or a gap in the stream
                raise ValueError(f"{path}: expected frame {start + n}, decoder gave frame {pos}")
            rgb = _to_rgb(reformatter, frame)
            if n == 0:
                out = _output(path, out, (stop - start, *rgb.shape), shape)
            assert out is not None
            out[n] = rgb[: out.shape[1], : out.shape[2]]  # drops encode_video's even-padding
            n += 1
            if n == stop - start:
                break
    if n < stop - start or out is None:
        raise ValueError(f"{path}: has frames up to {start + n - 1}, frames {start}..{stop - 1} requested")
    return out


def _output(
    path: Path, out: np.ndarray | None, decoded: tuple[int, ...], shape: tuple[int, int, int] | None
) -> np.ndarray:
    """The array `decode_frames` fills: `out` checked, or a new one; (N, H, W, 3) with H, W from `shape`."""
    n, fh, fw, c = decoded
    h, w = (fh, fw) if shape is None else (shape[0], shape[1])
    if fh < h or fw < w:
        raise ValueError(f"{path}: frames are {(fh, fw)}, expected at least {(h, w)}")
    if out is None:
        return np.empty((n, h, w, c), np.uint8)
    if out.shape != (n, h, w, c) or out.dtype != np.uint8:
        raise ValueError(f"{path}: out is {out.dtype} {out.shape}, frames need uint8 {(n, h, w, c)}")
    return out


def _to_rgb(reformatter: VideoReformatter, frame: av.VideoFrame) -> np.ndarray:
    """`frame.to_ndarray(format="rgb24")`, bit for bit, with one reformatter (its swscale context)
    reused across a file's frames: 0.27 instead of 0.6 ms a 64 x 64 frame, decoding included."""
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


def _crop(path: Path, video: np.ndarray, shape: tuple[int, int, int] | None) -> np.ndarray:
    """Crop (N, H', W', 3) frames to `shape` (H, W, 3), dropping `encode_video`'s even-padding."""
    if shape is None:
        return video
    h, w = shape[0], shape[1]
    if video.shape[1] < h or video.shape[2] < w:
        raise ValueError(f"{path}: frames are {video.shape[1:3]}, expected at least {(h, w)}")
    if video.shape[1:3] == (h, w):
        return video
    return np.ascontiguousarray(video[:, :h, :w])
