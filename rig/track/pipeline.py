"""The driving-video tracker end to end: video -> landmarks -> fitted rig parameters -> ``track.npz``.

``track_video`` streams the clip once through the landmark follower (``rig.track.sequence``),
fits the face model to the landmarks (``rig.track.fit``) and returns a ``ClipTrack``;
``save_track`` writes it as ``track.npz``; ``write_overlay`` streams the clip a second time and
draws the result over it. Memory holds the landmarks and parameters, never the frames.

``track.npz`` (plain arrays, read back by ``rig.io.npy.read_npz``), T = tracked frames:
    shape (S,), expression (T, E), global_pose / neck_pose / jaw_pose / translation (T, 3),
    eye_pose (T, 6): the rig parameters (radians, metres), as ``rig.face_model.RigParams``;
    landmarks_detected (T, 68, 2) pixels, NaN where no face was found; landmarks_fit (T, 68, 2)
    the fitted model's landmarks projected; detected (T,) bool; landmark_source (T,) int8
    (0 none, 1 full-frame detection, 2 crop detection, 3 tracked); detection_score (T,);
    fit_residual_px (T,) RMS fitted-vs-detected distance; fit_outlier (T,) bool, detected frames the
    model fits much worse than the rest (suspect landmarks); fps, width, height, frame_start
    (first frame's index in the video); camera_model ("perspective" | "weak_perspective");
    K (3, 3), R (3, 3), t (3,) for perspective (OpenCV: X_cam = R X_world + t, pixel centres at
    +0.5) or weak_perspective (T, 3) = DECA-style (scale, tx, ty) per frame; face_model (its spec).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.face_model.model import FaceModel
from rig.face_model.params import FIELD_NAMES, RigParams
from rig.io.atomic import atomic_path
from rig.io.video import DEFAULT_SEQUENCE_FPS, VideoReader, VideoWriter
from rig.track.config import TrackConfig
from rig.track.fit import FitResult, fit_landmarks
from rig.track.landmarks import DlibLandmarkDetector, LandmarkDetector
from rig.track.sequence import FaceFollower, LandmarkTrack


@dataclass
class ClipTrack:
    """Everything ``rig track`` computes for one clip.

    Attributes:
        fit: the fitted parameters, camera and projected landmarks (``FitResult``).
        landmarks: the follower's per-frame landmarks and flags (``LandmarkTrack``).
        fps: frames per second of the source. frame_start: index of the first tracked frame.
        source: the video path. face_model: how the face model was named.
        timings: seconds spent in ``landmarks`` and ``fit``.
        truncated: the video stopped decoding before its declared end (damaged / cut file).
    """

    fit: FitResult
    landmarks: LandmarkTrack
    fps: float
    frame_start: int
    source: str
    face_model: str
    timings: dict
    truncated: bool = False

    @property
    def n_frames(self) -> int:
        return int(self.landmarks.detected.shape[0])


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, dynamic_ncols=True)


def follow_video(path: str | os.PathLike, detector: LandmarkDetector, config: TrackConfig = TrackConfig(),
                 start: int = 0, end: int | None = None, progress: bool = True,
                 sequence_fps: float = DEFAULT_SEQUENCE_FPS) -> tuple[LandmarkTrack, VideoReader]:
    """Stream a clip through a ``FaceFollower``; returns the landmarks and the (closed) reader."""
    follower = FaceFollower(detector, config.follow)
    results = []
    with VideoReader(path, start=start, end=end, sequence_fps=sequence_fps) as reader:
        with _progress(reader.n_selected, "landmarks", progress) as bar:
            for frame in reader:
                results.append(follower.step(frame))
                bar.update(1)
    return LandmarkTrack.stack(results), reader


def track_video(path: str | os.PathLike, face_model: FaceModel, config: TrackConfig = TrackConfig(),
                start: int = 0, end: int | None = None, detector: LandmarkDetector | None = None,
                progress: bool = True, face_model_name: str = "",
                sequence_fps: float = DEFAULT_SEQUENCE_FPS) -> ClipTrack:
    """Track the face in frames ``start <= i < end`` of a video file or image folder.

    Raises ``InputError`` for unreadable videos and when no frame holds a face (frames where only
    some lack one are flagged in ``landmarks.detected`` and bridged by the fit).
    """
    detector = detector or DlibLandmarkDetector()
    t0 = time.perf_counter()
    track, reader = follow_video(path, detector, config, start, end, progress, sequence_fps)
    t1 = time.perf_counter()
    info = reader.info
    if not track.detected.any():
        raise InputError(f"{path}: no face found in any of the {track.detected.shape[0]} frames "
                         f"(frames {start}..{start + track.detected.shape[0] - 1})")
    with _progress(track.detected.shape[0], "fitting", progress) as bar:
        fit = fit_landmarks(face_model, track.landmarks, track.detected, info.width, info.height, config,
                            progress=bar.update)
    t2 = time.perf_counter()
    return ClipTrack(fit, track, info.fps, int(start), str(path), face_model_name,
                     {"landmarks": t1 - t0, "fit": t2 - t1}, truncated=reader.truncated)


def outlier_frames(residual_px: np.ndarray, landmarks: np.ndarray, factor: float = 3.0,
                   min_radii: float = 0.08) -> np.ndarray:
    """(T,) bool: detected frames whose fit residual exceeds ``factor`` x the clip's median and
    ``min_radii`` face radii: landmarks the model cannot explain (a mis-detection, an occlusion).

    residual_px: (T,) NaN where undetected. landmarks: (T, 68, 2) detected landmarks (for the radius).
    """
    finite = np.isfinite(residual_px)
    out = np.zeros(residual_px.shape, bool)
    if not finite.any():
        return out
    seen = landmarks[finite]
    centred = seen - seen.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred ** 2).sum(-1).mean(-1))
    limit = np.maximum(factor * np.median(residual_px[finite]), min_radii * radius)
    out[finite] = residual_px[finite] > limit
    return out


def track_arrays(result: ClipTrack) -> dict[str, np.ndarray]:
    """The ``track.npz`` arrays of a ``ClipTrack`` (see the module docstring)."""
    fit, lt = result.fit, result.landmarks
    params = fit.params.to_numpy()
    if fit.params.batch_size == 1:  # to_numpy drops the frame axis of a single frame; keep it
        params = {k: v[None] for k, v in params.items()}
    arrays = {k: params[k] for k in FIELD_NAMES}
    arrays["shape"] = arrays["shape"][0]
    arrays.update(
        landmarks_detected=lt.landmarks, landmarks_fit=fit.landmarks_fit, detected=lt.detected,
        landmark_source=lt.source, detection_score=lt.scores, fit_residual_px=fit.residual_px,
        fit_outlier=outlier_frames(fit.residual_px, lt.landmarks),
        fps=np.float64(result.fps), width=np.int64(fit.width), height=np.int64(fit.height),
        frame_start=np.int64(result.frame_start), camera_model=np.array(fit.camera_model),
        face_model=np.array(result.face_model),
    )
    if fit.camera_model == "perspective":
        arrays.update(K=fit.K, R=fit.R, t=fit.t)
    else:
        arrays["weak_perspective"] = fit.weak_perspective
    return arrays


def save_track(path: str | os.PathLike, result: ClipTrack) -> None:
    """Write ``track.npz`` atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **track_arrays(result))


def load_track_params(path: str | os.PathLike, face_model: FaceModel) -> RigParams:
    """The per-frame ``RigParams`` (T frames) stored in a ``track.npz``, sized for ``face_model``."""
    from rig.errors import CheckpointError
    from rig.io.npy import read_npz

    path = Path(path)
    try:  # rig's own zip / .npy reader: sizes, dtypes and byte counts checked before allocation
        z = read_npz(path, allow_str=True)  # camera_model and face_model are strings
    except CheckpointError as e:
        raise InputError(str(e).replace("not a readable .npz archive", "not a readable track .npz")) from None
    arrays = {k: z[k] for k in FIELD_NAMES if k in z}
    if "global_pose" not in arrays:
        raise InputError(f"{path}: not a track file (no 'global_pose')")
    return RigParams.from_arrays(arrays, face_model.n_shape, face_model.n_expression, torch.float64, source=str(path))


def write_overlay(path: str | os.PathLike, result: ClipTrack, face_model: FaceModel,
                  progress: bool = True, chunk: int = 32) -> str:
    """Draw detected (green) and fitted (red) landmarks and the mesh outline over the clip.

    Re-reads the source video (streaming) and writes an H.264 MP4 at its frame rate, atomically.
    Returns the codec used.
    """
    from rig.track.overlay import draw_frame, edge_faces, outline_segments, project_meshes

    faces = face_model.data.faces
    edges, adj = edge_faces(faces)
    T = result.n_frames
    lt, fit = result.landmarks, result.fit
    with VideoReader(result.source, start=result.frame_start, end=result.frame_start + T) as reader, \
            VideoWriter(path, result.fps) as writer, _progress(T, "overlay", progress) as bar:
        pixels = None
        for i, frame in enumerate(reader):
            if i % chunk == 0:
                pixels = project_meshes(face_model, fit, slice(i, min(i + chunk, T)))
            segments = outline_segments(pixels[i % chunk], faces, edges, adj)
            detected = lt.landmarks[i] if lt.detected[i] else None
            label = f"frame {result.frame_start + i}" + ("" if lt.detected[i] else "  NO FACE DETECTED (interpolated)")
            writer.write(draw_frame(frame, detected, fit.landmarks_fit[i], segments, label))
            bar.update(1)
    return writer.codec
