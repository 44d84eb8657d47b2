"""Video I/O: round trips through the writer and reader, rotation tags, folders, corrupt files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rig.errors import InputError, ShapeError
from rig.io.video import VideoReader, VideoWriter, read_frames, read_video_info, write_video


def _pattern_clip(n: int, h: int, w: int) -> np.ndarray:
    """Smooth, codec-friendly frames whose content identifies the frame index and orientation."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(n):
        r = 255 * xx / (w - 1)                       # left dark -> right bright
        g = 255 * yy / (h - 1)                       # top dark -> bottom bright
        b = np.full_like(r, 20.0 + 200.0 * i / max(n - 1, 1))  # brightness encodes the frame index
        frames.append(np.stack([r, g, b], -1).round().astype(np.uint8))
    return np.stack(frames)


def test_roundtrip_h264_keeps_size_fps_count_and_content(tmp_path):
    clip = _pattern_clip(12, 48, 64)
    path = tmp_path / "clip.mp4"
    codec = write_video(path, clip, fps=30)
    assert codec == "libx264"
    info = read_video_info(path)
    assert (info.width, info.height, info.n_frames, info.rotation) == (64, 48, 12, 0)
    assert info.fps == pytest.approx(30.0)
    back = read_frames(path)
    assert back.shape == clip.shape and back.dtype == np.uint8 and back.flags.c_contiguous
    # Lossy codec on smooth gradients: mean error of a few grey levels.
    assert np.abs(back.astype(float) - clip).mean() < 4.0
    # The per-frame blue level must follow the frame index (order preserved).
    assert np.all(np.diff(back[..., 2].mean(axis=(1, 2))) > 5)


def test_fractional_fps_and_mpeg4_codec(tmp_path):
    clip = _pattern_clip(6, 32, 32)
    path = tmp_path / "ntsc.mp4"
    assert write_video(path, clip, fps=30000 / 1001, codec="mpeg4") == "mpeg4"
    info = read_video_info(path)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.codec == "mpeg4" and info.n_frames == 6


def test_odd_frame_size_is_padded_to_even(tmp_path):
    clip = _pattern_clip(3, 31, 45)
    path = tmp_path / "odd.mp4"
    write_video(path, clip, fps=25)
    info = read_video_info(path)
    assert (info.width, info.height) == (46, 32)
    back = read_frames(path)
    assert np.abs(back[:, :31, :45].astype(float) - clip).mean() < 4.0


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_tag_is_applied_on_read(tmp_path, rotation):
    clip = _pattern_clip(4, 32, 48)
    path = tmp_path / f"rot{rotation}.mp4"
    write_video(path, clip, fps=25, rotation=rotation)
    info = read_video_info(path)
    assert info.rotation == rotation
    expect = np.stack([np.rot90(f, k=rotation // 90) for f in clip])
    assert (info.height, info.width) == expect.shape[1:3]
    back = read_frames(path)
    assert back.shape == expect.shape and back.flags.c_contiguous
    assert np.abs(back.astype(float) - expect).mean() < 4.0


def test_start_end_select_frames(tmp_path):
    clip = _pattern_clip(10, 32, 32)
    path = tmp_path / "c.mp4"
    write_video(path, clip, fps=25)
    full = read_frames(path)
    part = read_frames(path, start=3, end=7)
    assert part.shape[0] == 4
    np.testing.assert_array_equal(part, full[3:7])
    with VideoReader(path, start=8) as reader:
        assert reader.n_selected == 2 and len(list(reader)) == 2


def test_image_folder_in_natural_order(tmp_path):
    clip = _pattern_clip(11, 24, 32)
    for i, frame in enumerate(clip):
        Image.fromarray(frame).save(tmp_path / f"frame_{i}.png")  # frame_10 sorts after frame_9
    with VideoReader(tmp_path, sequence_fps=12.5) as reader:
        assert reader.info.n_frames == 11 and reader.info.fps == 12.5
        back = np.stack(list(reader))
    np.testing.assert_array_equal(back, clip)


def test_writer_is_atomic_and_rejects_bad_frames(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(ShapeError):
        with VideoWriter(path, fps=25) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            writer.write(np.zeros((16, 16), np.uint8))
    assert not path.exists()
    assert not list(tmp_path.iterdir()), "temporary file left behind"
    with pytest.raises(ShapeError, match="frame 1"):
        with VideoWriter(path, fps=25) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            writer.write(np.zeros((18, 16, 3), np.uint8))
    assert not path.exists()


def test_random_bytes_raise_input_error_naming_file(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="noise.mp4"):
        read_frames(path)


def test_truncated_file_raises_or_stops_flagged(tmp_path):
    clip = _pattern_clip(30, 64, 64)
    path = tmp_path / "full.mp4"
    write_video(path, clip, fps=25)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    # mp4 from the muxer keeps its index (moov) at the end: half a file has no index at all.
    with pytest.raises(InputError, match="cut.mp4"):
        read_frames(cut)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="nope.mp4"):
        VideoReader(tmp_path / "nope.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        VideoReader(empty)


def _write_with_pyav(path, clip, codec: str, fmt: str, fps: int = 25) -> None:
    """Write a clip in another container / codec than rig's writer produces (test input only)."""
    import av

    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], "yuv420p"
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("codec,fmt,suffix", [("libvpx-vp9", "webm", ".webm"), ("mpeg4", "matroska", ".mkv"),
                                              ("libx264", "matroska", ".mkv")])
def test_reads_other_containers_and_codecs(tmp_path, codec, fmt, suffix):
    clip = _pattern_clip(8, 48, 64)
    path = tmp_path / f"clip{suffix}"
    _write_with_pyav(path, clip, codec, fmt)
    info = read_video_info(path)
    assert (info.width, info.height, info.n_frames) == (64, 48, 8)
    assert info.fps == pytest.approx(25.0)
    back = read_frames(path)
    assert back.shape == clip.shape
    assert np.abs(back.astype(float) - clip).mean() < 6.0


def test_truncated_streamable_file_yields_good_frames_and_flags_it(tmp_path):
    clip = _pattern_clip(40, 64, 64)
    full = tmp_path / "full.mkv"
    _write_with_pyav(full, clip, "mpeg4", "matroska")
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with VideoReader(cut) as reader:
        frames = list(reader)
        assert 0 < len(frames) < 40
        assert reader.truncated
    # The frames that did decode are the clip's first frames.
    assert np.abs(np.stack(frames).astype(float) - clip[: len(frames)]).mean() < 6.0
