"""Video input and output: stream frames out of a video file or an image folder, write H.264 MP4.

Reading goes through PyAV (FFmpeg) one decoded frame at a time, so memory stays constant whatever
the clip length. Frames come out as C-contiguous ``(H, W, 3) uint8`` RGB arrays already turned
upright according to the container's display matrix (phone videos store portrait clips as
landscape frames plus a rotation tag). A folder of images (``.png``/``.jpg``/...) is read as a
clip too, in natural sort order, at a frame rate the caller gives.

Writing encodes H.264 (``libx264``, ``yuv420p``) and falls back to MPEG-4 part 2 when the FFmpeg
build lacks x264; the file appears only when complete (temp file + rename). yuv420p needs even
sides, so odd-sized frames are padded by one replicated row / column.

Every failure to read a user's file raises ``rig.errors.InputError`` naming the file.

A bug in FFmpeg's C decoders, reached by crafted bytes, would kill the process with a signal that
no ``except`` catches. ``probe_video`` therefore opens an untrusted clip and decodes its first
frames in a forked child first: a child killed by a signal, or one that hangs, becomes an
``InputError`` naming the file, and the command that asked stays alive. Commands that read a
user's video (``rig track``) probe it once before streaming it.
"""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from rig.errors import InputError, ShapeError
from rig.io.atomic import atomic_path
from rig.io.guard import DATA_ERRORS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_SEQUENCE_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, before decoding it.

    Attributes:
        path: the file or folder read.
        width, height: display size in pixels (after applying the rotation tag).
        fps: frames per second (the stream's average rate; the caller's value for image folders).
        n_frames: number of frames in the whole clip (from the container header, or counted from
            packets when the header has none).
        rotation: counter-clockwise degrees the stored frames are turned for display (0, 90, 180, 270).
        codec: decoder name, or ``"images"`` for a folder.
    """

    path: Path
    width: int
    height: int
    fps: float
    n_frames: int
    rotation: int
    codec: str


def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _list_images(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _upright(frame_rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation (multiple of 90 deg); always C-contiguous."""
    k = (rotation // 90) % 4
    if k:
        frame_rgb = np.rot90(frame_rgb, k=k)
    return np.ascontiguousarray(frame_rgb)


def _normalise_rotation(degrees: float | None) -> int:
    if degrees is None:
        return 0
    # Display matrices of real clips hold multiples of 90; anything else is rounded to the nearest.
    return int(round(float(degrees) / 90.0)) * 90 % 360


class VideoReader:
    """Stream RGB frames of a video file or an image folder.

    Use as a context manager or call ``close()``; iterate to get frames ``(H, W, 3) uint8`` RGB,
    C-contiguous, upright. ``start`` / ``end`` select frame indices ``start <= i < end`` (``end``
    None: to the last frame).

    Raises ``InputError`` (naming the file) when it cannot be opened, has no video stream, or fails
    to decode before yielding a single frame. A stream that breaks off after some good frames ends
    the iteration there and sets ``truncated`` (the caller decides whether that matters).
    """

    def __init__(self, path: str | os.PathLike, start: int = 0, end: int | None = None,
                 sequence_fps: float = DEFAULT_SEQUENCE_FPS):
        self.path = Path(path)
        if start < 0 or (end is not None and end <= start):
            raise InputError(f"{self.path}: empty frame range start={start}, end={end}")
        self.start, self.end = int(start), end
        self.truncated = False
        self._container = None
        if not self.path.exists():
            raise InputError(f"{self.path}: file not found")
        if self.path.is_dir():
            self._images = _list_images(self.path)
            if not self._images:
                raise InputError(f"{self.path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            first = self._read_image(self._images[0])
            self.info = VideoInfo(self.path, first.shape[1], first.shape[0], float(sequence_fps),
                                  len(self._images), 0, "images")
        else:
            import av

            self._images = None
            try:
                self.info = self._open_container()
            except InputError:
                self.close()
                raise
            except (av.error.FFmpegError,) + DATA_ERRORS as e:
                # Anything else a broken container provokes in PyAV is still the file's fault.
                self.close()
                raise InputError(f"{self.path}: not a readable video ({type(e).__name__}: {e})") from None

    # ------------------------------------------------------------------ opening

    def _open_container(self) -> VideoInfo:
        import av

        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{self.path}: not a readable video ({type(e).__name__}: {e})") from None
        if not self._container.streams.video:
            self.close()
            raise InputError(f"{self.path}: no video stream in the file")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # must be set before the decoder opens
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or float(rate) <= 0:
            self.close()
            raise InputError(f"{self.path}: video stream has no frame rate")
        if stream.codec_context is None:  # a codec tag FFmpeg has no decoder for
            self.close()
            raise InputError(f"{self.path}: the video stream's codec is unknown to this FFmpeg build (no decoder)")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            self.close()
            raise InputError(f"{self.path}: video stream has no frame size")
        rotation = self._probe_rotation()
        if rotation % 180:
            width, height = height, width
        n_frames = int(stream.frames or 0)
        if n_frames <= 0:
            n_frames = self._count_packets()
        # What the header's duration promises: a streamable file cut short still opens and its
        # packets can be counted, but it falls short of its declared duration.
        duration_s = None
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration_s = self._container.duration / 1e6
        self._expected_frames = max(n_frames, int(round(duration_s * float(rate))) if duration_s else 0)
        codec = stream.codec_context.name
        return VideoInfo(self.path, int(width), int(height), float(rate), n_frames, rotation, codec)

    def _probe_rotation(self) -> int:
        """Read the display rotation off the first decoded frame, then rewind."""
        import av

        stream = self._container.streams.video[0]
        rotation = 0
        try:
            for frame in self._container.decode(stream):
                rotation = _normalise_rotation(frame.rotation)
                break
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self.close()
            raise InputError(f"{self.path}: cannot decode the first frame ({type(e).__name__}: {e})") from None
        self._rewind()
        return rotation

    def _count_packets(self) -> int:
        import av

        stream = self._container.streams.video[0]
        count = 0
        try:
            for packet in self._container.demux(stream):
                if packet.size:
                    count += 1
        except (av.error.FFmpegError, OSError):
            pass
        self._rewind()
        return count

    def _rewind(self) -> None:
        import av

        try:
            self._container.seek(0, any_frame=False, backward=True, stream=self._container.streams.video[0])
        except (av.error.FFmpegError, OSError):
            # Some streams cannot seek: reopen instead.
            self._container.close()
            self._container = av.open(str(self.path), mode="r")

    def _read_image(self, file: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(file) as im:
                return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise InputError(f"{file}: not a readable image ({e})") from None

    # ------------------------------------------------------------------ iteration

    @property
    def n_selected(self) -> int:
        """Frames the ``start``/``end`` range selects, by the header count (may be short if truncated)."""
        stop = self.info.n_frames if self.end is None else min(self.end, self.info.n_frames)
        return max(0, stop - self.start)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._images is not None:
            yield from self._iter_images()
        else:
            yield from self._iter_container()

    def _iter_images(self) -> Iterator[np.ndarray]:
        stop = len(self._images) if self.end is None else min(self.end, len(self._images))
        for i in range(self.start, stop):
            frame = self._read_image(self._images[i])
            if frame.shape[:2] != (self.info.height, self.info.width):
                raise InputError(f"{self._images[i]}: size {frame.shape[1]}x{frame.shape[0]} differs from the "
                                 f"first image's {self.info.width}x{self.info.height}")
            yield frame

    def _iter_container(self) -> Iterator[np.ndarray]:
        import av

        if self._container is None:
            raise InputError(f"{self.path}: reader is closed")
        stream = self._container.streams.video[0]
        index, yielded = 0, 0
        frames = self._container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (av.error.FFmpegError,) + DATA_ERRORS as e:
                if yielded == 0 and index == 0:
                    raise InputError(f"{self.path}: cannot decode video ({type(e).__name__}: {e})") from None
                self.truncated = True
                break
            if self.end is not None and index >= self.end:
                break
            if index >= self.start:
                rgb = frame.to_ndarray(format="rgb24")
                yield _upright(rgb, self.info.rotation)
                yielded += 1
            index += 1
        if yielded == 0:
            raise InputError(f"{self.path}: no decodable frame in range start={self.start}, end={self.end}")
        expected = max(self.info.n_frames, getattr(self, "_expected_frames", 0))
        if index < expected - 1 and (self.end is None or index < self.end):
            # One frame of slack: durations are rounded to whole frames.
            self.truncated = True

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_video_info(path: str | os.PathLike, sequence_fps: float = DEFAULT_SEQUENCE_FPS) -> VideoInfo:
    """Open ``path`` only to read its ``VideoInfo`` (raises ``InputError`` like ``VideoReader``)."""
    with VideoReader(path, sequence_fps=sequence_fps) as reader:
        return reader.info


PROBE_FRAMES = 8
PROBE_TIMEOUT_S = 60.0


def _probe_in_process(path: Path, n_frames: int, sequence_fps: float) -> str:
    """What the probe's child runs: "" when the first ``n_frames`` frames decode, else the InputError text."""
    try:
        with VideoReader(path, end=n_frames, sequence_fps=sequence_fps) as reader:
            for _ in reader:
                pass
    except InputError as e:
        return str(e) or f"{path}: not a readable video"
    return ""


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def probe_video(path: str | os.PathLike, n_frames: int = PROBE_FRAMES, timeout_s: float = PROBE_TIMEOUT_S,
                sequence_fps: float = DEFAULT_SEQUENCE_FPS, _child=None) -> None:
    """Open ``path`` and decode its first ``n_frames`` frames in a forked child process.

    Raises ``InputError`` naming the file when the clip is unreadable (the reader's own message),
    when the decoder kills the child (a crash inside FFmpeg: SIGSEGV, SIGABRT, ...), or when it
    decodes for longer than ``timeout_s``. Returns None when the frames decode. One probe costs a
    fork and the decode of a few frames. Where ``os.fork`` is missing (Windows) the frames are
    decoded in this process instead. ``_child`` replaces the child's work (for tests).
    """
    path = Path(path)
    _child = _child or _probe_in_process
    if not hasattr(os, "fork"):
        message = _child(path, n_frames, sequence_fps)
        if message:
            raise InputError(message)
        return
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into the caller's code
        code = 0
        try:
            os.close(read_fd)
            import faulthandler

            faulthandler.disable()  # the parent reports a crash in one line; no C traceback dump
            message = _child(path, n_frames, sequence_fps)
            os.write(write_fd, ("ok\n" if not message else "error " + message).encode("utf-8", "replace")[:65536])
        except BaseException:  # noqa: BLE001 - an unexpected error is reported as exit status 3
            code = 3
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    hung = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                hung = True
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        if hung:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
    if hung:
        raise InputError(f"{path}: the video decoder did not finish the first {n_frames} frames in "
                         f"{timeout_s:g} s; refusing the file")
    if os.WIFSIGNALED(status):
        raise InputError(f"{path}: the video decoder crashed ({_signal_name(os.WTERMSIG(status))}) on the "
                         f"first {n_frames} frames; the file is damaged or crafted, refusing it")
    report = b"".join(chunks).decode("utf-8", "replace")
    if report.startswith("error "):
        raise InputError(report[len("error "):])
    if report != "ok\n":
        raise InputError(f"{path}: the video probe failed (exit status {os.waitstatus_to_exitcode(status)})")


def read_frames(path: str | os.PathLike, start: int = 0, end: int | None = None) -> np.ndarray:
    """Decode a whole (short) clip into memory: ``(T, H, W, 3) uint8``. For tests and small clips."""
    with VideoReader(path, start=start, end=end) as reader:
        return np.stack(list(reader))


class VideoWriter:
    """Encode RGB frames to an MP4 file atomically.

    ``rotation`` (counter-clockwise degrees, multiple of 90) tags the stream with a display matrix, as
    phones do; frames are stored as given. ``codec`` "auto" tries ``libx264`` (yuv420p, CRF ``crf``) and falls back to ``mpeg4``. The
    frame size is fixed by the first frame; odd sides are padded to even by edge replication.
    The output path appears only after ``close()`` (or leaving the ``with`` block) succeeds; an
    exception inside the block leaves no file behind.
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "auto", crf: int = 18,
                 rotation: int = 0):
        if not fps or fps <= 0:
            raise InputError(f"{path}: frame rate must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.codec_request = codec
        self.crf = int(crf)
        self.rotation = _normalise_rotation(rotation)
        self.codec: str | None = None
        self.n_written = 0
        self._atomic = atomic_path(self.path, suffix=self.path.suffix or ".mp4")
        self._tmp = self._atomic.__enter__()
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    def _open(self, height: int, width: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        candidates = ["libx264", "mpeg4"] if self.codec_request == "auto" else [self.codec_request]
        last_error: Exception | None = None
        for name in candidates:
            try:
                container = av.open(str(self._tmp), mode="w", format="mp4")
                stream = container.add_stream(name, rate=rate)
            except (av.error.FFmpegError, ValueError, av.codec.codec.UnknownCodecError) as e:
                last_error = e
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - best effort on a failed open
                    pass
                continue
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            if self.rotation:
                if not hasattr(stream, "set_display_rotation"):
                    container.close()
                    raise InputError(f"{self.path}: writing a rotation tag needs a newer PyAV (has {av.__version__})")
                stream.set_display_rotation(self.rotation)
            if name == "libx264":
                stream.options = {"crf": str(self.crf), "preset": "veryfast"}
            else:
                stream.bit_rate = 8_000_000
            self._container, self._stream, self.codec = container, stream, name
            self._size = (height, width)
            return
        raise InputError(f"{self.path}: no usable video encoder among {candidates} ({last_error})")

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3) uint8`` RGB frame (all frames must share the first one's size)."""
        import av

        frame_rgb = np.asarray(frame_rgb)
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ShapeError(f"{self.path}: frames must be (H, W, 3) uint8, got {frame_rgb.shape} {frame_rgb.dtype}")
        if self._container is None:
            self._open(frame_rgb.shape[0], frame_rgb.shape[1])
        if frame_rgb.shape[:2] != self._size:
            raise ShapeError(f"{self.path}: frame {self.n_written} is {frame_rgb.shape[1]}x{frame_rgb.shape[0]}, "
                             f"the clip is {self._size[1]}x{self._size[0]}")
        h, w = self._size
        if h % 2 or w % 2:
            frame_rgb = np.pad(frame_rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.n_written += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file into place."""
        if self._atomic is None:
            return
        try:
            if self._container is None:
                raise InputError(f"{self.path}: no frames were written")
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
        except BaseException as e:
            self._abort(e)
            raise
        self._atomic.__exit__(None, None, None)
        self._atomic = None

    def _abort(self, exc: BaseException) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            self._container = None
        if self._atomic is not None:
            try:
                self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            except BaseException:  # noqa: BLE001 - atomic_path re-raises what we pass it
                pass
            self._atomic = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self._abort(exc)
        else:
            self.close()


def write_video(path: str | os.PathLike, frames, fps: float, codec: str = "auto", rotation: int = 0) -> str:
    """Write an iterable of ``(H, W, 3) uint8`` frames to ``path``; return the codec used."""
    with VideoWriter(path, fps, codec=codec, rotation=rotation) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.codec
