"""Drawing one world sample's parameters: identity, expression, pose, gaze, lighting, skin, hair, background.

``draw_params(cfg, seed, index, ...)`` is a pure function of (seed, index): each image gets its own
numpy ``Generator`` seeded with both, so a dataset is identical however it is batched or sharded.
Returned arrays are the rows of the dataset's parameter table (radians, linear RGB).
"""

from __future__ import annotations

import numpy as np

from rig.face_model.params import euler_to_axis_angle, split_head_rotation
from rig.world.background import BACKGROUND_KINDS
from rig.world.config import WorldConfig
from rig.world.hair import HAIR_COLOURS, HAIR_STYLES

# Monk Skin Tone scale (10 swatches, sRGB hex) - the full human range from lightest to darkest.
MONK_SKIN_TONES = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")
IRIS_COLOURS = np.array([[0.06, 0.03, 0.015], [0.12, 0.07, 0.03], [0.10, 0.16, 0.22], [0.10, 0.14, 0.08]], np.float32)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def skin_albedo(tone: float) -> np.ndarray:
    """Linear-RGB skin albedo for ``tone`` in [0, 1] (0 = Monk 1, lightest; 1 = Monk 10, darkest)."""
    swatches = srgb_to_linear(np.array([[int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)] for h in MONK_SKIN_TONES]))
    pos = np.clip(tone, 0, 1) * (len(swatches) - 1)
    i = min(int(pos), len(swatches) - 2)
    # Swatches are photographed skin colours; scale down a little so lit skin (albedo x light) is not white.
    return ((1 - (pos - i)) * swatches[i] + (pos - i) * swatches[i + 1]) * 0.8


def _sh_lighting(cfg: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    from rig.render.shading import sh_from_lights

    tint = 1 + rng.uniform(-0.08, 0.08, 3)
    ambient = rng.uniform(*cfg.ambient) * tint
    key_dir = (rng.uniform(-1, 1), rng.uniform(-1, 0.3), -rng.uniform(0.2, 1.0))  # camera space, towards the light
    key = rng.uniform(*cfg.key) * (1 + rng.uniform(-0.1, 0.1, 3))
    lights = [(key_dir, key)]
    if rng.uniform() < 0.5:
        fill_dir = (-key_dir[0], rng.uniform(-0.5, 0.5), -rng.uniform(0.2, 1.0))
        lights.append((fill_dir, key * rng.uniform(0.1, 0.4)))
    return sh_from_lights(ambient, lights).numpy().astype(np.float32)


def preset_table(face_model) -> dict[str, tuple[np.ndarray, float]]:
    """Every expression preset of ``face_model`` as (expression (E,) float32, jaw opening radians)."""
    from rig.face_model.presets import expression_preset, preset_names

    table = {}
    for name in preset_names():
        if name == "neutral":
            continue
        expr, jaw = expression_preset(face_model, name)
        table[name] = (expr.detach().cpu().numpy().astype(np.float32), float(jaw[0]))
    return table


def draw_albedo(rng: np.random.Generator, names: tuple[str, ...]) -> np.ndarray:
    """Coefficients (K,) of the face model's albedo components: 'skin_tone' uniform over the model's
    full documented range [-2, 2] (very light .. very dark), the others N(0, 1) clipped to +-2."""
    coeffs = np.clip(rng.standard_normal(len(names)), -2, 2)
    for i, name in enumerate(names):
        if name == "skin_tone":
            coeffs[i] = rng.uniform(-2, 2)
    return coeffs.astype(np.float32)


def draw_params(cfg: WorldConfig, seed: int, index: int, n_shape: int, expression_names: tuple[str, ...],
                presets: dict[str, tuple[np.ndarray, float]] | None = None,
                albedo_names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """One image's parameters (a dict of arrays; see ``rig.world.sampler`` for the table's keys).

    ``presets`` (from ``preset_table``) enables named expression presets; the key ``preset`` holds
    the index of the drawn preset in ``sorted(presets)``, or -1. With ``albedo_names`` (a model with
    an albedo model) the key ``albedo`` holds its coefficients and ``skin_tone`` is the 'skin_tone'
    coefficient mapped to [0, 1]; without, skin comes from the Monk swatches (``skin_rgb``).
    """
    rng = np.random.default_rng([int(seed), int(index)])
    shape = np.zeros(n_shape, np.float32)
    k = min(cfg.n_shape, n_shape)
    shape[:k] = rng.standard_normal(k) * cfg.shape_std

    E = len(expression_names)
    expr = np.zeros(E, np.float32)
    if rng.uniform() >= cfg.expr_neutral:
        active = rng.uniform(size=E) < cfg.expr_active
        expr = np.where(active, rng.uniform(0, cfg.expr_max, E), 0).astype(np.float32)
        if rng.uniform() < 0.7:  # mostly symmetric faces: copy each Left unit's value to its Right twin
            for i, name in enumerate(expression_names):
                if name.endswith("Left") and name[:-4] + "Right" in expression_names:
                    expr[expression_names.index(name[:-4] + "Right")] = expr[i]
        for i, name in enumerate(expression_names):  # gaze and jaw opening have their own joints
            if name.startswith("eyeLook") or name == "jawOpen":
                expr[i] = 0
    jaw = np.zeros(3, np.float32)
    if rng.uniform() < cfg.jaw_open_prob:
        jaw[0] = rng.uniform(0, cfg.jaw_open_max)
    preset = -1
    if presets and rng.uniform() < cfg.preset_prob:
        names = sorted(presets)
        preset = int(rng.integers(len(names)))
        strength = rng.uniform(0.5, 1.0)
        p_expr, p_jaw = presets[names[preset]]
        keep = rng.uniform(size=E) < 0.5  # half of the random units stay on top of the preset
        expr = np.clip(strength * p_expr + np.where(keep, expr, 0), 0, 1).astype(np.float32)
        jaw[0] = max(jaw[0] * 0.5, strength * p_jaw)

    ypr = np.array([rng.uniform(-cfg.yaw_max, cfg.yaw_max), rng.uniform(-cfg.pitch_max, cfg.pitch_max),
                    rng.uniform(-cfg.roll_max, cfg.roll_max)])
    root, neck = split_head_rotation(ypr, rng.uniform(*cfg.neck_share))
    gaze = euler_to_axis_angle(rng.uniform(-cfg.gaze_yaw_max, cfg.gaze_yaw_max),
                               rng.uniform(-cfg.gaze_pitch_max, cfg.gaze_pitch_max), 0.0)

    tone = rng.uniform()
    albedo = draw_albedo(rng, albedo_names) if albedo_names else np.zeros(0, np.float32)
    if "skin_tone" in albedo_names:
        tone = (float(albedo[albedo_names.index("skin_tone")]) + 2) / 4
    style = cfg.hair_styles[int(rng.integers(len(cfg.hair_styles)))]
    hair_rgb = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))] * rng.uniform(0.8, 1.2)
    bg = cfg.background_kinds[int(rng.integers(len(cfg.background_kinds)))]
    return {
        "seed": np.int64(seed), "preset": np.int64(preset),
        "shape": shape, "expression": expr, "global_pose": root.astype(np.float32), "neck_pose": neck.astype(np.float32),
        "jaw_pose": jaw, "eye_pose": np.concatenate([gaze, gaze]).astype(np.float32),
        "translation": np.zeros(3, np.float32), "head_ypr": ypr.astype(np.float32),
        "sh": _sh_lighting(cfg, rng), "skin_tone": np.float32(tone), "skin_rgb": skin_albedo(tone).astype(np.float32), "albedo": albedo,
        "hair_style": np.int64(list(HAIR_STYLES).index(style)), "hair_rgb": hair_rgb.astype(np.float32),
        "iris_rgb": IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        "background": np.int64(BACKGROUND_KINDS.index(bg)), "background_seed": rng.integers(0, 2**62, dtype=np.int64),
        "colour_noise_seed": rng.integers(0, 2**62, dtype=np.int64),
    }
