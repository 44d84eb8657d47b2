"""What the encoder reads for known rig parameters: the bridge from face-model units to RigNet targets.

RigNet steers the *labeler's reading* of ``G(w')``. A user asks in face-model terms ("smile at
strength 1", "eyeBlinkLeft = 0.8"); the encoder reads such a face with its own shrinkage (its
expression readings have ~0.6 of the truth's spread). ``calibrate_encoder`` renders default-world
heads with exactly known parameters and records what the encoder reads:

* ``presets``: for each named preset, the mean reading (E + 6 controls) of world renders of random
  heads, poses and lights with the preset at strength 1 and no other expression; ``neutral`` the same
  heads with no expression at all. ``--expr NAME:S`` asks for ``S x (preset - neutral)`` on top of the
  source's reading (or on top of ``neutral`` with ``--absolute``).
* ``units``: per expression unit, ``intercept`` and ``slope`` of the reading against the truth over
  world images (``--unit NAME=V`` asks for ``slope * V`` more, or exactly ``intercept + slope * V``).
* ``frozen``: expression units the world never varies (gaze, jawOpen, tongueOut): refused.
* ``floor``: the encoder's own error on those renders (yaw / pitch / roll / jaw median |error| in
  degrees): what no RigNet can beat when judged by this instrument.

The result is a plain JSON-able dict, stored in the RigNet file's header.
"""

from __future__ import annotations

import numpy as np
import torch

from rig.rignet.controls import encoder_control_names


def world_frozen_units(expression_names: tuple[str, ...], n: int = 3000, seed: int = 7) -> tuple[str, ...]:
    """Expression units that are 0 in every drawn world image (no rendering: the priors alone)."""
    from rig.face_model import load_face_model
    from rig.world.config import WorldConfig
    from rig.world.priors import draw_params, preset_table

    model = load_face_model("default")
    presets = preset_table(model)
    cfg = WorldConfig()
    expr = np.stack([draw_params(cfg, seed, i, model.n_shape, tuple(expression_names), presets)["expression"]
                     for i in range(n)])
    return tuple(name for name, col in zip(expression_names, expr.T) if np.abs(col).max() == 0)


def render_world_rows(rows: list[dict], batch: int = 32) -> np.ndarray:
    """(N, S, S, 3) uint8 world renders of parameter rows (``rig.world.priors.draw_params`` dicts)."""
    from rig.face_model import load_face_model
    from rig.world.config import WorldConfig
    from rig.world.render import WorldRenderer

    renderer = WorldRenderer(load_face_model("default"), WorldConfig())
    return np.concatenate([renderer.render(rows[i:i + batch])[0] for i in range(0, len(rows), batch)])


def world_rows(n: int, seed: int, neutral: bool = True) -> list[dict]:
    """``n`` world parameter rows (random head, pose, light, hair, background); ``neutral`` clears the
    expression and the jaw so a caller can set exactly the ones it wants."""
    from rig.face_model import load_face_model
    from rig.world.config import WorldConfig
    from rig.world.priors import draw_params

    model = load_face_model("default")
    rows = [draw_params(WorldConfig(), seed, i, model.n_shape, tuple(model.expression_names), None,
                        tuple(model.data.albedo_names)) for i in range(n)]
    if neutral:
        for r in rows:
            r["expression"] = np.zeros_like(r["expression"])
            r["jaw_pose"] = np.zeros_like(r["jaw_pose"])
    return rows


def with_preset(rows: list[dict], preset: tuple[np.ndarray, float]) -> list[dict]:
    """Copies of world ``rows`` showing exactly ``preset`` (a ``preset_table`` entry: expression (E,),
    jaw opening radians) and nothing else of an expression."""
    expr, jaw = preset
    return [dict(r, expression=np.asarray(expr, np.float32).copy(), jaw_pose=np.array([jaw, 0, 0], np.float32))
            for r in rows]


def read_uint8(labeler, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N, P) encoder controls of (N, S, S, 3) uint8 images."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
        out.append(labeler.read(x)[0])
    return np.concatenate(out)


def calibrate_encoder(labeler, n_per_preset: int = 64, n_units: int = 1500, seed: int = 11, progress: bool = True) -> dict:
    """The calibration dict of the module docstring, for an ``EncoderLabeler`` on the default world."""
    from tqdm import tqdm

    from rig.face_model import load_face_model
    from rig.world.priors import preset_table

    model = load_face_model("default")
    names = tuple(model.expression_names)
    E = len(names)
    table = preset_table(model)
    base = world_rows(n_per_preset, seed)
    readings = {}
    jobs = ["neutral"] + sorted(table)
    for name in tqdm(jobs, desc="calibrate presets", disable=not progress):
        rows = base if name == "neutral" else with_preset(base, table[name])
        readings[name] = read_uint8(labeler, render_world_rows(rows))
    # Units: world images as the world draws them (random units, presets, jaw), truth against reading.
    from rig.world.config import WorldConfig
    from rig.world.priors import draw_params

    urows = [draw_params(WorldConfig(), seed + 1, i, model.n_shape, names, table, tuple(model.data.albedo_names))
             for i in range(n_units)]
    uread = read_uint8(labeler, render_world_rows(urows))
    truth = np.stack([r["expression"] for r in urows]).astype(np.float64)
    units = {}
    for k, name in enumerate(names):
        t = truth[:, k]
        if t.std() < 1e-6:
            continue
        slope, intercept = np.polyfit(t, uread[:, k], 1)
        units[name] = {"slope": float(slope), "intercept": float(intercept),
                       "corr": float(np.corrcoef(t, uread[:, k])[0, 1])}
    ypr_true = np.stack([r["head_ypr"] for r in urows]).astype(np.float64)
    jaw_true = np.stack([r["jaw_pose"][0] for r in urows]).astype(np.float64)
    err = np.degrees(np.abs(uread[:, E + 3:E + 6] - ypr_true))
    floor = {"yaw_deg": float(np.median(err[:, 0])), "pitch_deg": float(np.median(err[:, 1])),
             "roll_deg": float(np.median(err[:, 2])),
             "jaw_deg": float(np.median(np.degrees(np.abs(uread[:, E] - jaw_true)))),
             "yaw_slope": float(np.polyfit(ypr_true[:, 0], uread[:, E + 3], 1)[0]),
             "pitch_slope": float(np.polyfit(ypr_true[:, 1], uread[:, E + 4], 1)[0]),
             "jaw_slope": float(np.polyfit(jaw_true, uread[:, E], 1)[0]),
             "n_images": n_units}
    return {"instrument": "encoder", "control_names": list(encoder_control_names(names)),
            "presets": {k: v.mean(0).tolist() for k, v in readings.items()},
            "preset_std": {k: v.std(0).tolist() for k, v in readings.items()},
            "preset_truth": {k: [table[k][0].tolist(), float(table[k][1])] for k in table},
            "units": units, "frozen": list(world_frozen_units(names)), "floor": floor,
            "n_per_preset": n_per_preset, "seed": seed}


def preset_direction(calibration: dict, name: str) -> np.ndarray:
    """(P,) reading change of preset ``name`` at strength 1 over the same heads' neutral reading."""
    return np.asarray(calibration["presets"][name]) - np.asarray(calibration["presets"]["neutral"])


def along(reading: np.ndarray, calibration: dict, name: str, space) -> np.ndarray:
    """Projection of (N, P) readings on preset ``name``'s reading change (expression, eyes and jaw
    controls, each in units of its std in ``space``), in units of that change: 0 = the neutral heads'
    reading, 1 = the world's renders of the preset at strength 1."""
    idx = np.concatenate([space.group_indices(g) for g in ("jaw", "expression", "eyes")])
    d = preset_direction(calibration, name)[idx] / space.std[idx]
    neutral = np.asarray(calibration["presets"]["neutral"])[idx]
    x = (np.atleast_2d(reading)[:, idx] - neutral) / space.std[idx]
    nrm = float(d @ d)
    return x @ d / nrm if nrm > 1e-12 else np.zeros(len(x))
