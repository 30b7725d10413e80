"""robo.data.video: mp4 round trip through PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robo.data.video import decode_video, encode_video


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
