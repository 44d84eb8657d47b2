"""Synthetic test clips with a known motion: a real face photo moved along a similarity trajectory.

No face videos can be downloaded here, so the tracker is checked on clips made from
``skimage.data.astronaut()`` (a real face): each frame is the photo warped by a known in-plane
rotation, scale and translation about the face. ``SimilarityTrajectory.apply`` maps any photo
points (e.g. landmarks found on the still photo) to where they are in each frame, which gives the
ground truth to compare the tracker against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# Centre of the astronaut's face in the 512x512 photo (pixels, centre convention), measured from
# dlib's landmarks on the still image; the clip keeps this point at the frame centre (plus t).
ASTRONAUT_FACE_CENTRE = (226.0, 128.0)


@dataclass(frozen=True)
class SimilarityTrajectory:
    """Per-frame similarity motion of the photo about ``centre`` (photo pixels).

    Frame pixel ``p_f = scale * Rot(roll) @ (p - centre) + frame_centre + translation``, with
    ``Rot(a) = [[cos a, -sin a], [sin a, cos a]]`` in image axes (v down), so ``roll`` adds to the
    ``atan2(dv, du)`` angle of any line in the face (positive = clockwise on screen).

    Attributes:
        roll: (T,) radians. scale: (T,) unitless. translation: (T, 2) pixels.
        centre: (2,) photo pixels. width, height: frame size.
    """

    roll: np.ndarray
    scale: np.ndarray
    translation: np.ndarray
    centre: tuple[float, float]
    width: int
    height: int

    @property
    def n_frames(self) -> int:
        return int(self.roll.shape[0])

    def matrix(self, i: int) -> np.ndarray:
        """(2, 3) affine map photo -> frame for frame ``i``."""
        c, s = np.cos(self.roll[i]), np.sin(self.roll[i])
        A = self.scale[i] * np.array([[c, -s], [s, c]])
        b = np.array([self.width / 2.0, self.height / 2.0]) + self.translation[i] - A @ np.asarray(self.centre)
        return np.concatenate([A, b[:, None]], axis=1)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) photo points -> (T, N, 2) their positions in every frame."""
        return np.stack([points @ self.matrix(i)[:, :2].T + self.matrix(i)[:, 2] for i in range(self.n_frames)])


def render_clip(photo: np.ndarray, trajectory: SimilarityTrajectory) -> np.ndarray:
    """(T, H, W, 3) uint8 frames: ``photo`` warped by each frame's similarity (bilinear, black outside)."""
    image = Image.fromarray(np.ascontiguousarray(photo))
    frames = []
    for i in range(trajectory.n_frames):
        M = trajectory.matrix(i)
        inv = np.linalg.inv(M[:, :2])
        off = -inv @ M[:, 2]
        coeffs = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
        frames.append(np.asarray(image.transform((trajectory.width, trajectory.height), Image.AFFINE,
                                                 coeffs, resample=Image.BILINEAR)))
    return np.stack(frames)


def astronaut_photo() -> np.ndarray:
    """(512, 512, 3) uint8: ``skimage.data.astronaut()``."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def roll_swing(n_frames: int, amplitude_rad: float, static_frames: int = 0, width: int = 320, height: int = 320,
               scale: float = 1.0) -> SimilarityTrajectory:
    """Roll swinging ``+-amplitude`` (one full sine period) after ``static_frames`` still frames."""
    t = np.arange(n_frames)
    moving = np.clip(t - static_frames, 0, None)
    span = max(n_frames - static_frames, 1)
    roll = amplitude_rad * np.sin(2 * np.pi * moving / span) * (t >= static_frames)
    return SimilarityTrajectory(roll, np.full(n_frames, scale), np.zeros((n_frames, 2)), ASTRONAUT_FACE_CENTRE,
                                width, height)
