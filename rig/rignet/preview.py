"""The rig render of a control vector, for ``--side-by-side``: what the target asks for, drawn by the rig.

``controls_to_params`` maps a reading back to face-model parameters: yaw / pitch / roll become the
head rotation (split between the root and the neck as the world does, 35 % in the neck), the jaw
its rotation, and each expression unit ``(reading - intercept) / slope`` through the calibration
(clipped to 0..1; units the encoder reads too poorly to invert, correlation < 0.3, stay 0).
``render_controls`` draws them with the default world's renderer and crop (the same camera
convention as the generator's training images): a bald, neutral-identity head in studio light.
"""

from __future__ import annotations

import numpy as np
import torch

from rig.face_model.params import RigParams, split_head_rotation
from rig.rignet.controls import ControlSpace

NECK_SHARE = 0.35  # the middle of the world's neck_share range


def controls_to_truth(space: ControlSpace, calibration: dict | None, controls: np.ndarray, n_expression: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expression (E,), jaw_pose (3,), head yaw/pitch/roll (3,)) face-model values for a (P,) reading."""
    c = np.asarray(controls, np.float64)
    ypr = np.array([c[space.index(n)] if space.has(n) else 0.0 for n in ("yaw", "pitch", "roll")])
    jaw = np.array([c[space.index("jaw_x")] if space.has("jaw_x") else 0.0, 0.0, 0.0])
    expr = np.zeros(n_expression)
    if calibration is not None:
        for k, name in enumerate(space.names[:n_expression]):
            u = calibration["units"].get(name)
            if u is not None and u["corr"] >= 0.3 and abs(u["slope"]) > 1e-3:
                expr[k] = np.clip((c[k] - u["intercept"]) / u["slope"], 0, 1)
    return expr, jaw, ypr


def controls_to_params(space: ControlSpace, calibration: dict | None, controls: np.ndarray, n_expression: int = 52
                       ) -> RigParams:
    """A ``RigParams`` (batch 1, float32) for a (P,) reading (see the module docstring)."""
    expr, jaw, ypr = controls_to_truth(space, calibration, controls, n_expression)
    root, neck = split_head_rotation(ypr, NECK_SHARE)
    params = RigParams.zeros(1, 0, n_expression)
    params.expression = torch.as_tensor(expr[None], dtype=torch.float32)
    params.jaw_pose = torch.as_tensor(jaw[None], dtype=torch.float32)
    params.global_pose = torch.as_tensor(root[None], dtype=torch.float32)
    params.neck_pose = torch.as_tensor(neck[None], dtype=torch.float32)
    return params


class ControlRenderer:
    """Renders (B, P) control vectors as the default world's crops: (B, S, S, 3) uint8."""

    def __init__(self, space: ControlSpace, calibration: dict | None, resolution: int = 64):
        from rig.face_model import load_face_model
        from rig.world.config import WorldConfig
        from rig.world.priors import draw_params
        from rig.world.render import WorldRenderer
        from rig.world.hair import HAIR_STYLES

        self.model = load_face_model("default")
        self.space, self.calibration = space, calibration
        self.renderer = WorldRenderer(self.model, WorldConfig(resolution=resolution))
        row = draw_params(WorldConfig(), 0, 0, self.model.n_shape, tuple(self.model.expression_names), None,
                          tuple(self.model.data.albedo_names))
        row["shape"] = np.zeros_like(row["shape"])
        row["albedo"] = np.zeros_like(row["albedo"])
        row["hair_style"] = np.int64(list(HAIR_STYLES).index("bald"))
        row["eye_pose"] = np.zeros_like(row["eye_pose"])
        from rig.render.shading import light_preset

        row["sh"] = light_preset("studio").numpy().astype(np.float32)
        self.base = row

    def render(self, controls: np.ndarray) -> np.ndarray:
        rows = []
        for c in np.atleast_2d(controls):
            p = controls_to_params(self.space, self.calibration, c, self.model.n_expression)
            row = dict(self.base)
            row.update(expression=p.expression[0].numpy(), jaw_pose=p.jaw_pose[0].numpy(),
                       global_pose=p.global_pose[0].numpy(), neck_pose=p.neck_pose[0].numpy())
            rows.append(row)
        out = [self.renderer.render(rows[i:i + 16])[0] for i in range(0, len(rows), 16)]
        return np.concatenate(out)
