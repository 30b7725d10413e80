"""robo.data.video: mp4 round trip through PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import frame_at, make_spec

from robo.data import DatasetWriter
from robo.data.video import decode_frames, decode_video, encode_video


def smooth_frames(n: int, h: int, w: int) -> np.ndarray:
    t = np.arange(n)[:, None, None]
    y, x = np.mgrid[0:h, 0:w]
    r = 128 + 90 * np.sin(0.05 * x + 0.1 * t)
    g = 128 + 90 * np.cos(0.04 * y + 0.05 * t)
    b = 100 + 2 * (x + y) + 0 * t
    return np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8)


@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_round_trip_within_compression_tolerance(tmp_path: Path, codec: str) -> None:
    frames = smooth_frames(12, 32, 32)
    info = encode_video(tmp_path / "v.mp4", frames, fps=10, codec=codec)
    out = decode_video(tmp_path / "v.mp4", (32, 32, 3))
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - frames).mean() < 3.0  # 3/255 mean abs error
    assert info["video.codec"] == {"libx264": "h264", "libsvtav1": "av1"}[codec]
    assert info["video.height"] == 32 and info["video.pix_fmt"] == "yuv420p"


def test_odd_size_is_padded_then_cropped(tmp_path: Path) -> None:
    frames = smooth_frames(5, 31, 33)
    encode_video(tmp_path / "v.mp4", frames, fps=15)
    out = decode_video(tmp_path / "v.mp4", (31, 33, 3))
    assert out.shape == (5, 31, 33, 3)
    assert np.abs(out.astype(float) - frames).mean() < 3.0


def test_atomic_write_leaves_only_the_final_file(tmp_path: Path) -> None:
    encode_video(tmp_path / "a" / "v.mp4", smooth_frames(3, 16, 16), fps=10)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["v.mp4"]


def test_bad_input_and_garbage_file_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_video(tmp_path / "v.mp4", np.zeros((2, 8, 8, 3), np.float32), fps=10)
    assert not (tmp_path / "v.mp4").exists()
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(Exception):  # noqa: B017 - PyAV's own error type; Dataset wraps it
        decode_video(tmp_path / "bad.mp4")


# ---------------------------------------------------------------------------- real-time priority (issue 22)
def _policies() -> dict[int, int]:
    """Scheduling policy of every thread of this process, by thread id."""
    import os

    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            out[int(tid)] = os.sched_getscheduler(int(tid))
        except OSError:  # the thread ended meanwhile
            pass
    return out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux scheduling policies")
@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_encoding_never_leaves_or_runs_a_thread_at_real_time_priority(tmp_path: Path, codec: str) -> None:
    """Encoding and decoding in a writer-like thread, and a DatasetWriter's own thread: while they run
    and after, every thread of the process stays SCHED_OTHER (as root here libsvtav1 used to switch
    the calling thread and its encoder threads to SCHED_FIFO 99)."""
    import os
    import threading

    def record_one_episode(root: Path) -> int:
        """The scheduling policy of a DatasetWriter's thread right after it wrote a camera episode."""
        spec = make_spec(camera=True)
        with DatasetWriter(root, spec, fps=10, task="peg", video_codec=codec) as w:
            for t in range(12):
                w.add_frame(frame_at(0, t, spec))
            w.save_episode()
            w.wait()
            return os.sched_getscheduler(w._thread.native_id)

    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # an earlier test must not have leaked either
    seen_rt: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            # real time = FIFO or RR (Mesa's shader-cache thread, started by any earlier EGL render,
            # runs SCHED_BATCH on purpose: below normal, not above)
            seen_rt.update(tid for tid, pol in _policies().items() if pol in (os.SCHED_FIFO, os.SCHED_RR))
            done.wait(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    worker_policy: list[int] = []

    def work() -> None:
        encode_video(tmp_path / "v.mp4", smooth_frames(24, 64, 64), fps=10, codec=codec)
        decode_video(tmp_path / "v.mp4")
        worker_policy.append(os.sched_getscheduler(0))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(60)
    writer_thread_policy = record_one_episode(tmp_path / "ds")
    done.set()
    watcher.join(5)
    assert worker_policy == [os.SCHED_OTHER] and writer_thread_policy == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER and os.sched_getscheduler(os.getpid()) == os.SCHED_OTHER
    assert not seen_rt, f"threads {sorted(seen_rt)} ran at a real-time policy"


@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_decode_frames_equals_decode_video_for_every_range(tmp_path: Path, codec: str) -> None:
    """Seeking to a range gives the very frames a whole decode gives there (odd size: cropped alike)."""
    encode_video(tmp_path / "v.mp4", smooth_frames(23, 17, 20), fps=10, codec=codec)
    whole = decode_video(tmp_path / "v.mp4", (17, 20, 3))
    for start in range(23):
        for stop in {start + 1, min(start + 5, 23), 23}:
            part = decode_frames(tmp_path / "v.mp4", start, stop, 10, (17, 20, 3))
            np.testing.assert_array_equal(part, whole[start:stop], err_msg=f"{start}..{stop}")
    out = np.zeros((4, 17, 20, 3), np.uint8)
    assert decode_frames(tmp_path / "v.mp4", 6, 10, 10, (17, 20, 3), out=out) is out
    np.testing.assert_array_equal(out, whole[6:10])


def test_decode_frames_errors_name_the_file(tmp_path: Path) -> None:
    encode_video(tmp_path / "v.mp4", smooth_frames(6, 16, 16), fps=10)
    with pytest.raises(ValueError, match=r"v\.mp4: has frames up to 5, frames 4\.\.7 requested"):
        decode_frames(tmp_path / "v.mp4", 4, 8, 10)
    with pytest.raises(ValueError, match=r"v\.mp4: frame range 3\.\.3 is empty"):
        decode_frames(tmp_path / "v.mp4", 3, 3, 10)
    with pytest.raises(ValueError, match=r"v\.mp4: out is uint8 \(2, 16, 16, 3\)"):
        decode_frames(tmp_path / "v.mp4", 0, 3, 10, out=np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"v\.mp4: frames are \(16, 16\), expected at least \(18, 16\)"):
        decode_frames(tmp_path / "v.mp4", 0, 3, 10, (18, 16, 3))
