"""Follow one face through a clip: per-frame 68-point landmarks with detection, tracking, re-detection.

Every frame after the first is handled in a *rectified crop*: the previous frame's landmarks give
the face's centre, size and roll, and the frame is warped (similarity transform) so that the face
sits upright, centred and at a fixed size in a small square crop. In that crop

1. the detector runs (cheap on a small crop, and the face is upright and large enough for HOG
   whatever its size and roll in the frame: small faces are upsampled by the warp);
2. if it confirms a face near the centre, the landmarks come from its box; otherwise the box is
   predicted from the previous landmarks (tracking mode) and the frame counts as *tracked*;
3. the landmarks are mapped back to the frame.

The face is declared lost (and searched for in the whole frame, highest score first) when the
tracked landmarks stop looking like a face (Procrustes residual against the first detection's
shape) or after ``max_tracked_frames`` frames in a row without a detector confirmation: tracking
from the previous landmarks alone drifts after fast motion. Frames where no face is found keep
NaN landmarks and ``detected = False``; the fitter interpolates over them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from rig.errors import ShapeError
from rig.track.landmarks import Detection, LandmarkDetector, check_frame

SOURCE_NONE, SOURCE_FULL_DETECT, SOURCE_CROP_DETECT, SOURCE_TRACKED = 0, 1, 2, 3
SOURCE_NAMES = ("none", "full-frame detection", "crop detection", "tracked")

# iBUG-68 index ranges used to read a face's roll and size.
RIGHT_EYE = slice(36, 42)  # the subject's right eye: image left in a frontal view
LEFT_EYE = slice(42, 48)


@dataclass(frozen=True)
class FollowConfig:
    """Settings of the per-frame landmark follower (part of ``TrackConfig``).

    Attributes:
        crop_size: side of the rectified crop in pixels.
        crop_face_radius: RMS distance of the 68 landmarks from their centroid in the crop (pixels);
            ~42 px makes dlib's HOG box ~100 px, above its 80 px window.
        min_score: detector score needed to accept a box.
        max_tracked_frames: frames in a row without detector confirmation before the face counts
            as lost and the whole frame is searched again.
        max_shape_residual: Procrustes residual (in face radii) above which tracked landmarks are
            rejected as not a face.
        min_appearance: normalised cross-correlation between the upright crop of a tracked frame
            and that of the last detector-confirmed frame below which the face counts as lost
            (dlib's predictor returns a face-shaped answer on anything, even a blank frame).
        full_frame_upsample: try the whole-frame search once more with this many upsamplings when
            nothing is found at native size (small faces); 0 disables. While no face is found the
            upsampled search (~4x the cost) runs on every ``upsample_every``-th frame only.
        detect_every: run the detector in the crop on every n-th frame only and take the box from
            the previous landmarks in between (tracking mode, ~3x cheaper per frame); 1 = always.
        motion_redetect: in tracking mode, run the detector anyway when the landmarks moved more
            than this many face radii since the previous frame (fast motion).
    """

    crop_size: int = 200
    crop_face_radius: float = 42.0
    min_score: float = 0.0
    max_tracked_frames: int = 25
    max_shape_residual: float = 0.3
    min_appearance: float = 0.5
    full_frame_upsample: int = 1
    upsample_every: int = 5
    detect_every: int = 2
    motion_redetect: float = 0.15


@dataclass
class LandmarkTrack:
    """Landmarks of one face through a clip of T frames.

    Attributes:
        landmarks: (T, 68, 2) float64 pixels (centre convention), NaN where no face was found.
        detected: (T,) bool, landmarks present.
        scores: (T,) float64 detector score, NaN on tracked / missing frames.
        source: (T,) int8, one of ``SOURCE_*`` (0 none, 1 full-frame, 2 crop detection, 3 tracked).
    """

    landmarks: np.ndarray
    detected: np.ndarray
    scores: np.ndarray
    source: np.ndarray

    @classmethod
    def stack(cls, frames: list["FrameLandmarks"]) -> "LandmarkTrack":
        T = len(frames)
        lmk = np.full((T, 68, 2), np.nan)
        scores = np.full(T, np.nan)
        source = np.zeros(T, np.int8)
        for i, f in enumerate(frames):
            if f.landmarks is not None:
                lmk[i] = f.landmarks
            scores[i] = f.score
            source[i] = f.source
        return cls(lmk, ~np.isnan(lmk[:, 0, 0]), scores, source)


@dataclass(frozen=True)
class FrameLandmarks:
    """One frame's result: ``landmarks`` (68, 2) or None, ``score`` (NaN if none), ``source``."""

    landmarks: np.ndarray | None
    score: float
    source: int


def similarity_from_landmarks(landmarks: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre (2,), RMS radius (pixels) and roll (radians, image plane, + = clockwise on screen)."""
    centre = landmarks.mean(axis=0)
    radius = float(np.sqrt(((landmarks - centre) ** 2).sum(axis=1).mean()))
    d = landmarks[LEFT_EYE].mean(axis=0) - landmarks[RIGHT_EYE].mean(axis=0)
    return centre, radius, math.atan2(d[1], d[0])


def procrustes_residual(points: np.ndarray, reference: np.ndarray) -> float:
    """RMS distance after the best similarity alignment, in units of the reference's RMS radius."""
    a = points - points.mean(axis=0)
    b = reference - reference.mean(axis=0)
    b_norm = np.sqrt((b ** 2).sum())
    a_norm = np.sqrt((a ** 2).sum())
    if a_norm < 1e-9 or b_norm < 1e-9:
        return float("inf")
    a, b = a / a_norm, b / b_norm
    u, s, vt = np.linalg.svd(a.T @ b)
    # Allow rotation and scale only, no reflection.
    d = np.sign(np.linalg.det(u @ vt))
    # With unit-norm a, b: min over scale and rotation of |a - sigma R b|^2 = 1 - trace^2, and the
    # RMS radius of a is 1/sqrt(N), so the residual in radii is sqrt(1 - trace^2).
    trace = s[0] + d * s[1]
    return float(np.sqrt(max(0.0, 1.0 - trace * trace)))


class RectifiedCrop:
    """Similarity warp between frame pixels and an upright face crop (centre pixel convention).

    ``crop = scale * Rot(-roll) @ (frame - centre) + crop_size / 2``.
    """

    def __init__(self, centre: np.ndarray, radius: float, roll: float, config: FollowConfig):
        self.size = int(config.crop_size)
        self.scale = config.crop_face_radius / max(radius, 1e-6)
        c, s = math.cos(roll), math.sin(roll)
        self.rot = np.array([[c, s], [-s, c]])  # Rot(-roll)
        self.centre = np.asarray(centre, dtype=np.float64)
        self.half = self.size / 2.0

    def to_crop(self, pts: np.ndarray) -> np.ndarray:
        return self.scale * (pts - self.centre) @ self.rot.T + self.half

    def to_frame(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.half) @ self.rot / self.scale + self.centre

    def warp(self, frame_rgb: np.ndarray) -> np.ndarray:
        """The (size, size, 3) uint8 crop, bilinear; outside the frame is black."""
        # PIL wants the inverse map (crop -> frame) as x_src = a x + b y + c, y_src = d x + e y + f.
        inv = self.rot.T / self.scale
        offset = self.centre - inv @ np.array([self.half, self.half])
        coeffs = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
        img = Image.fromarray(frame_rgb).transform((self.size, self.size), Image.AFFINE, coeffs,
                                                   resample=Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(img))


class FaceFollower:
    """Stateful per-frame landmark source for one face (see the module docstring).

    ``step(frame)`` returns the frame's ``FrameLandmarks``; state between calls is the previous
    landmarks, the learned box-from-landmarks relation and the reference shape.
    """

    def __init__(self, detector: LandmarkDetector, config: FollowConfig = FollowConfig()):
        self.detector = detector
        self.config = config
        self.previous: np.ndarray | None = None
        self.reference: np.ndarray | None = None
        self.template: np.ndarray | None = None  # upright grey crop of the last confirmed face
        self.tracked_run = 0
        self.frame_count = 0
        self.missed_run = 0  # frames in a row without any face
        # Detector box relative to the landmarks, in crop pixels: (left, top, right, bottom) around
        # the crop centre. Initial value measured on dlib HOG boxes; refined at every detection.
        r = config.crop_face_radius
        self.box_in_crop = np.array([-1.17 * r, -0.95 * r, 1.17 * r, 1.35 * r])

    def reset(self) -> None:
        self.previous = None
        self.tracked_run = 0

    def step(self, frame_rgb: np.ndarray) -> FrameLandmarks:
        frame_rgb = check_frame(frame_rgb)
        if self.previous is not None:
            result = self._follow(frame_rgb, self.previous)
            if result is not None and _moved(result.landmarks, self.previous) > self.config.motion_redetect:
                # Fast motion: the face sat off-centre (maybe cut) in this crop. Read it again
                # from a crop centred on where it was found.
                again = self._follow(frame_rgb, result.landmarks, force_detect=True)
                result = again if again is not None else result
            if result is not None:
                return self._accept(result)
            self.reset()
        found = self._search(frame_rgb)
        if found is None:
            self.missed_run += 1
            return FrameLandmarks(None, float("nan"), SOURCE_NONE)
        self.missed_run = 0
        # Re-read the landmarks in the rectified crop so that every frame's landmarks come from the
        # same upright, fixed-size view (mixing views adds jitter).
        refined = self._follow(frame_rgb, found.landmarks)
        if refined is not None and refined.source == SOURCE_CROP_DETECT:
            refined = FrameLandmarks(refined.landmarks, max(refined.score, found.score), SOURCE_FULL_DETECT)
        else:
            refined = FrameLandmarks(found.landmarks, found.score, SOURCE_FULL_DETECT)
        return self._accept(refined)

    # ------------------------------------------------------------------ internals

    def _accept(self, result: FrameLandmarks) -> FrameLandmarks:
        self.previous = result.landmarks
        if result.source == SOURCE_TRACKED:
            self.tracked_run += 1
        else:
            self.tracked_run = 0
            if self.reference is None:
                self.reference = result.landmarks.copy()
        return result

    def _search(self, frame_rgb: np.ndarray) -> Detection | None:
        found = [d for d in self.detector.detect(frame_rgb) if d.score >= self.config.min_score]
        upsample = self.config.full_frame_upsample
        due = self.missed_run % max(self.config.upsample_every, 1) == 0
        if not found and upsample > 0 and due:
            found = [d for d in self.detector.detect(frame_rgb, upsample=upsample) if d.score >= self.config.min_score]
        return found[0] if found else None

    def _follow(self, frame_rgb: np.ndarray, previous: np.ndarray, force_detect: bool = False) -> FrameLandmarks | None:
        centre, radius, roll = similarity_from_landmarks(previous)
        if not np.isfinite(radius) or radius < 2.0:
            return None
        crop = RectifiedCrop(centre, radius, roll, self.config)
        image = crop.warp(frame_rgb)
        half = crop.half
        if not force_detect:
            self.frame_count += 1
        detected_now = (force_detect or self.config.detect_every <= 1
                        or self.frame_count % self.config.detect_every == 0)
        best = self._detect_in_crop(image) if detected_now else None
        lmk_crop = None
        if best is None and not detected_now:
            # Tracking mode. After fast motion the previous frame's box is off and the predictor
            # lands part-way: when the landmarks moved more than `motion_redetect` face radii,
            # ask the detector after all.
            lmk_crop = self.detector.landmarks_in_box(image, self.box_in_crop + half)
            if _moved(crop.to_frame(lmk_crop), previous) > self.config.motion_redetect:
                best = self._detect_in_crop(image)
        if best is not None:
            self._learn_box(best.box, best.landmarks)
            self.template = _face_patch(image, self.config)
            return FrameLandmarks(crop.to_frame(best.landmarks), best.score, SOURCE_CROP_DETECT)
        if self.tracked_run >= self.config.max_tracked_frames:
            return None
        if self.template is not None and _ncc(_face_patch(image, self.config), self.template) < self.config.min_appearance:
            return None
        if lmk_crop is None:
            lmk_crop = self.detector.landmarks_in_box(image, self.box_in_crop + half)
        landmarks = crop.to_frame(lmk_crop)
        if self.reference is not None and procrustes_residual(landmarks, self.reference) > self.config.max_shape_residual:
            return None
        return FrameLandmarks(landmarks, float("nan"), SOURCE_TRACKED)

    def _detect_in_crop(self, image: np.ndarray) -> Detection | None:
        """The best detector box near the centre of the upright crop, or None."""
        half = self.config.crop_size / 2.0
        for det in self.detector.detect(image):
            if det.score < self.config.min_score:
                continue
            cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
            # Accept only a box near where the face was: a confident face elsewhere in the crop is
            # somebody else (or clothing).
            if abs(cx - half) < 0.35 * self.config.crop_size and abs(cy - half) < 0.35 * self.config.crop_size:
                return det
        return None

    def _learn_box(self, box: np.ndarray, lmk_crop: np.ndarray) -> None:
        """Update the box-from-landmarks relation from a detector box (crop pixels)."""
        centre, radius, _ = similarity_from_landmarks(lmk_crop)
        scale = self.config.crop_face_radius / max(radius, 1e-6)
        rel = (box - np.concatenate([centre, centre])) * scale
        self.box_in_crop = 0.8 * self.box_in_crop + 0.2 * rel


def _moved(landmarks: np.ndarray, previous: np.ndarray) -> float:
    """Mean landmark displacement between two frames, in face radii of ``previous``."""
    radius = similarity_from_landmarks(previous)[1]
    return float(np.sqrt(((landmarks - previous) ** 2).sum(-1)).mean() / max(radius, 1e-6))


def _face_patch(crop_rgb: np.ndarray, config: FollowConfig) -> np.ndarray:
    """Grey central square of an upright crop (the inner face), float64."""
    half, r = config.crop_size / 2.0, config.crop_face_radius
    lo, hi = int(round(half - 1.2 * r)), int(round(half + 1.2 * r))
    return crop_rgb[lo:hi, lo:hi].astype(np.float64).mean(axis=2)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equal-size patches; 0 when either is flat."""
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-9 else 0.0


def follow_face(frames, detector: LandmarkDetector, config: FollowConfig = FollowConfig(),
                progress=None) -> LandmarkTrack:
    """Run a ``FaceFollower`` over an iterable of (H, W, 3) uint8 frames; return the ``LandmarkTrack``.

    ``progress``: optional callable invoked once per frame (e.g. a tqdm ``update``).
    """
    follower = FaceFollower(detector, config)
    out = []
    for frame in frames:
        out.append(follower.step(frame))
        if progress is not None:
            progress()
    if not out:
        raise ShapeError("follow_face: the clip has no frames")
    return LandmarkTrack.stack(out)
