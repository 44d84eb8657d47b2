"""``WorldConfig``: the ranges the default world draws heads, poses, lights and backgrounds from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rig.errors import InputError


@dataclass(frozen=True)
class WorldConfig:
    """Priors of the embedded default world (angles in radians, lengths in metres).

    Image:
        resolution: side of the aligned output crop in pixels.
        supersample: the crop is rendered at ``resolution * supersample`` and box-filtered down.
        align_rotation: FFHQ-style alignment rotates the crop so the eyes are level (head roll then
            shows only through the neck); False keeps the camera's roll.
        fov_deg: vertical field of view of the render camera (degrees).
    Identity / expression:
        shape_std: scale of the identity coefficients (1 = the model's own standard deviation).
        n_shape: how many leading identity components vary (the rest stay 0).
        expr_active: probability that each named expression unit is active in an image.
        expr_max: active units draw a coefficient uniformly in [0, expr_max].
        expr_neutral: probability of a fully neutral expression.
        jaw_open_max: jaw opening (rotation about x) drawn uniformly in [0, jaw_open_max] ...
        jaw_open_prob: ... with this probability, else 0.
        preset_prob: probability that an image starts from a named expression preset
            (``rig.face_model.presets``: smile, surprise, blink, ...) at strength U(0.5, 1), with the
            random units added on top at half their usual rate.
    Pose:
        yaw_max, pitch_max, roll_max: head angles drawn uniformly in +-max (relative to the camera).
        neck_share: fraction range of the head rotation carried by the neck joint (the rest by the root).
        gaze_yaw_max, gaze_pitch_max: eye rotation ranges (both eyes together).
    Appearance:
        ambient: range of the ambient light level; key: range of the key light's strength.
        hair_styles: which of ``rig.world.hair.HAIR_STYLES`` may be drawn (names).
        background_kinds: which of ``rig.world.background.BACKGROUND_KINDS`` may be drawn.
    """

    resolution: int = 64
    supersample: int = 2
    align_rotation: bool = True
    fov_deg: float = 12.0

    shape_std: float = 1.0
    n_shape: int = 30
    expr_active: float = 0.12
    expr_max: float = 0.9
    expr_neutral: float = 0.15
    jaw_open_max: float = 0.35
    jaw_open_prob: float = 0.4
    preset_prob: float = 0.3

    yaw_max: float = 0.6108652381980153     # 35 degrees
    pitch_max: float = 0.3490658503988659   # 20 degrees
    roll_max: float = 0.17453292519943295   # 10 degrees
    neck_share: tuple[float, float] = (0.2, 0.5)
    gaze_yaw_max: float = 0.26
    gaze_pitch_max: float = 0.17

    ambient: tuple[float, float] = (0.15, 0.45)
    key: tuple[float, float] = (0.5, 1.0)
    hair_styles: tuple[str, ...] = ("bald", "buzz", "short", "volume")
    background_kinds: tuple[str, ...] = ("gradient", "noise")

    def validate(self) -> "WorldConfig":
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise InputError(f"world config: resolution {r} is not a power of two >= 8")
        if self.supersample < 1:
            raise InputError("world config: supersample must be >= 1")
        from rig.world.background import BACKGROUND_KINDS
        from rig.world.hair import HAIR_STYLES

        for name in self.hair_styles:
            if name not in HAIR_STYLES:
                raise InputError(f"world config: unknown hair style '{name}' (known: {', '.join(HAIR_STYLES)})")
        for name in self.background_kinds:
            if name not in BACKGROUND_KINDS:
                raise InputError(f"world config: unknown background '{name}' (known: {', '.join(BACKGROUND_KINDS)})")
        if not self.hair_styles or not self.background_kinds:
            raise InputError("world config: needs at least one hair style and one background kind")
        return self

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "WorldConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}).validate()
