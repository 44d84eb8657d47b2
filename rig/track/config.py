"""``TrackConfig``: every setting of the driving-video tracker in one record."""

from __future__ import annotations

from dataclasses import dataclass, field

from rig.errors import InputError
from rig.track.sequence import FollowConfig

CAMERA_MODELS = ("perspective", "weak_perspective")


@dataclass(frozen=True)
class TrackConfig:
    """Settings of ``rig.track`` (landmark following + model fitting).

    Camera:
        camera: "perspective" (pinhole, principal point at the image centre) or "weak_perspective"
            (DECA-style per-frame scale + 2D translation).
        focal_px: focal length in pixels; None estimates it (starting from ``default_fov_deg``).
        default_fov_deg: horizontal field of view of the initial focal guess (degrees; ~55 for
            webcams and phones).
    Fitting:
        smooth: temporal smoothness strength (0 = none; 1 = default; larger = smoother, laggier).
        window, overlap: frames optimised together, and frames shared by consecutive windows.
        identity_frames: frames (spread over the clip) that estimate the shared identity + focal.
        n_shape, n_expression: leading coefficients fitted (the rest stay zero).
        iters_identity, iters_window: Levenberg-Marquardt iterations of the identity stage and
            per window (each stops early once the objective stops decreasing).
        shape_prior, expression_prior, jaw_prior, neck_prior, focal_prior: weights of the
            quadratic priors (coefficients, radians, log focal) relative to the landmark term,
            whose unit is the squared landmark error in face radii.
        contour_weight: weight of the 17 jaw-line landmarks (dlib's least reliable) vs the others.
        robust_scale: pseudo-Huber scale of the landmark error, in face radii.
        torch_threads: torch intra-op threads while fitting (None: leave torch's setting alone).
    Landmarks:
        follow: ``FollowConfig`` of the per-frame landmark follower.
    """

    camera: str = "perspective"
    focal_px: float | None = None
    default_fov_deg: float = 55.0
    smooth: float = 1.0
    window: int = 64
    overlap: int = 8
    identity_frames: int = 24
    n_shape: int = 50
    n_expression: int = 50
    iters_identity: int = 10
    iters_window: int = 4
    shape_prior: float = 1e-3
    expression_prior: float = 2e-4
    jaw_prior: float = 1e-3
    neck_prior: float = 1e-1
    focal_prior: float = 1e-2
    contour_weight: float = 0.5
    robust_scale: float = 0.1
    torch_threads: int | None = 1
    follow: FollowConfig = field(default_factory=FollowConfig)

    def __post_init__(self) -> None:
        if self.camera not in CAMERA_MODELS:
            raise InputError(f"camera must be one of {CAMERA_MODELS}, got {self.camera!r}")
        if self.focal_px is not None and not self.focal_px > 0:
            raise InputError(f"focal length must be positive pixels, got {self.focal_px}")
        if self.smooth < 0:
            raise InputError(f"smoothness must be >= 0, got {self.smooth}")
        if self.window < 2 or not 0 <= self.overlap < self.window:
            raise InputError(f"need window >= 2 and 0 <= overlap < window, got {self.window}, {self.overlap}")
        if not 0.0 < self.default_fov_deg < 180.0:
            raise InputError(f"field of view must be in (0, 180) degrees, got {self.default_fov_deg}")
