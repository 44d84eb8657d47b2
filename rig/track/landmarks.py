"""Face detection and 68-point landmarks behind a small backend interface, and the dlib backend.

A backend answers two questions about one RGB frame:
``detect(frame)`` -> every face box it finds, best first, each with its 68 iBUG landmarks; and
``landmarks_in_box(frame, box)`` -> the 68 landmarks for a box the caller already knows (tracking
mode: the box comes from the previous frame, which is much cheaper than searching the frame).
The clip-level logic (which box to follow, when to re-detect) lives in ``rig.track.sequence`` and
works with any backend.

Pixel convention (the one ``rig.render.camera`` uses): ``(u, v)`` with u right, v down, and the
centre of pixel (row i, column j) at ``(j + 0.5, i + 0.5)``. dlib reports integer pixel indices,
so its points are shifted by +0.5 here.

The dlib backend: HOG frontal detector (``dlib-bin``) + the 68-point shape predictor shipped by
``face_recognition_models`` (trained on iBUG 300-W: not for commercial use). Measured traps it
guards against: dlib silently finds nothing in non-contiguous arrays (``img[:, ::-1]``) and
raises on float images, so frames are validated and made C-contiguous here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rig.errors import InputError, ShapeError

N_LANDMARKS = 68


@dataclass(frozen=True)
class Detection:
    """One face found in one frame.

    Attributes:
        box: (4,) float64 ``(left, top, right, bottom)`` in pixels (edges, not centres).
        score: detector confidence (dlib HOG: SVM margin, > 0 is a face; larger is surer).
        landmarks: (68, 2) float64 iBUG-68 points ``(u, v)`` in pixels, centre convention.
        subdetector: which of the backend's detectors fired (dlib HOG: 0 frontal, 1/2 profile-ish,
            3/4 rotated left/right), -1 when unknown.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    subdetector: int = -1


@runtime_checkable
class LandmarkDetector(Protocol):
    """What ``rig.track.sequence`` needs from a landmark backend."""

    #: smallest face box side (pixels) the detector finds without upsampling.
    min_face_size: float

    def detect(self, frame_rgb: np.ndarray, upsample: int | None = None) -> list[Detection]:
        """All faces in ``frame_rgb`` ((H, W, 3) uint8 RGB), best (highest score) first.

        ``upsample``: image doublings before searching (finds smaller faces, slower); None = the
        backend's default.
        """
        ...

    def landmarks_in_box(self, frame_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) landmarks for the face in ``box`` ((4,) left, top, right, bottom pixels)."""
        ...


def check_frame(frame_rgb: np.ndarray) -> np.ndarray:
    """Return ``frame_rgb`` as a C-contiguous (H, W, 3) uint8 array; raise ``ShapeError`` otherwise."""
    frame_rgb = np.asarray(frame_rgb)
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
        raise ShapeError(f"landmark detector: frame must be (H, W, 3) RGB, got shape {frame_rgb.shape}")
    if frame_rgb.dtype != np.uint8:
        raise ShapeError(f"landmark detector: frame must be uint8, got {frame_rgb.dtype}")
    return np.ascontiguousarray(frame_rgb)


def face_recognition_models_dir() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` package.

    Found without importing the package (its ``__init__`` needs ``pkg_resources``, which current
    setuptools no longer ships).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the 68-point landmark model needs the 'face_recognition_models' package: "
                         "install rig's [track] extra (pip install '.[track]' in the rig checkout)")
    for location in spec.submodule_search_locations:
        models = Path(location) / "models"
        if models.is_dir():
            return models
    raise InputError(f"face_recognition_models is installed but has no models/ folder "
                     f"(looked in {list(spec.submodule_search_locations)})")


class DlibLandmarkDetector:
    """dlib HOG face detector + 68-point shape predictor.

    Args:
        predictor_path: the ``shape_predictor_68_face_landmarks.dat`` file; default: the one in
            ``face_recognition_models``.
        upsample: image doublings before HOG detection (each finds faces half as large, ~4x slower).
        score_threshold: minimum HOG score kept (dlib's own default is 0; clothing false positives
            measured at about -0.05).
    """

    min_face_size = 80.0  # dlib's HOG window is 80x80 pixels

    def __init__(self, predictor_path: str | Path | None = None, upsample: int = 0, score_threshold: float = 0.0):
        try:
            import dlib
        except ImportError:
            raise InputError("face tracking needs dlib: install rig's [track] extra "
                             "(pip install '.[track]' in the rig checkout)") from None
        path = Path(predictor_path) if predictor_path else face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not path.is_file():
            raise InputError(f"{path}: shape predictor file not found")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as e:
            raise InputError(f"{path}: not a dlib shape predictor ({e})") from None
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)

    def detect(self, frame_rgb: np.ndarray, upsample: int | None = None) -> list[Detection]:
        frame_rgb = check_frame(frame_rgb)
        upsample = self.upsample if upsample is None else int(upsample)
        rects, scores, kinds = self._detector.run(frame_rgb, upsample, self.score_threshold)
        found = []
        for rect, score, kind in zip(rects, scores, kinds):
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)
            found.append(Detection(box, float(score), self._predict(frame_rgb, rect), int(kind)))
        # Highest score first, not largest box: low-score boxes on clothing can be larger than the face.
        found.sort(key=lambda d: -d.score)
        return found

    def landmarks_in_box(self, frame_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        frame_rgb = check_frame(frame_rgb)
        box = np.asarray(box, dtype=np.float64)
        if box.shape != (4,):
            raise ShapeError(f"landmarks_in_box: box must be (4,) left, top, right, bottom; got {box.shape}")
        rect = self._dlib.rectangle(int(round(box[0])), int(round(box[1])),
                                    int(round(box[2])) - 1, int(round(box[3])) - 1)
        return self._predict(frame_rgb, rect)

    def _predict(self, frame_rgb: np.ndarray, rect) -> np.ndarray:
        shape = self._predictor(frame_rgb, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return pts + 0.5
