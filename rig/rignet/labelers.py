"""Labelers: read a control vector (``rig.rignet.controls``) off generated images.

* ``EncoderLabeler``: the default world's face-parameter encoder (``rig.instruments.encoder``);
  fast, differentiable (so RigNet can train with ``G`` and the encoder in the loop), but only for
  generators of the default world.
* ``TrackLabeler``: dlib's 68 landmarks + rig's tracker model fit (``rig.instruments.dlib_reader``),
  for any generator of faces and any face model; head pose and jaw only, not differentiable.

Both take images (B, 3, S, S) float in [-1, 1] as ``G.synthesis`` returns them and give
(controls (B, P) float64 physical units, readable (B,) bool). An unreadable image (no face found, or
the encoder's face score says none) is reported, never labelled.
"""

from __future__ import annotations

import numpy as np
import torch

from rig.errors import InputError
from rig.rignet.controls import POSE_NAMES, encoder_control_names

LABELERS = ("encoder", "track")


class EncoderLabeler:
    """The face-parameter encoder as a labeler. ``names`` = expression units, jaw_x/y/z, yaw/pitch/roll."""

    name = "encoder"
    differentiable = True

    def __init__(self, encoder="default", expression_names: tuple[str, ...] | None = None):
        from rig.instruments.encoder import load_encoder

        self.encoder = load_encoder(encoder) if isinstance(encoder, str) else encoder.eval()
        self.encoder.requires_grad_(False)
        E = self.encoder.cfg.n_expression
        if expression_names is None:
            from rig.face_model import load_face_model

            expression_names = tuple(load_face_model("default").expression_names)
        if len(expression_names) != E:
            raise InputError(f"encoder reads {E} expression units, the face model names {len(expression_names)}")
        self.names = encoder_control_names(tuple(expression_names))
        # The head's first E + 6 outputs are expression, jaw and head angles, standardised.
        self._std, self._mean = self.encoder.target_std[:E + 6].float(), self.encoder.target_mean[:E + 6].float()

    def to(self, device) -> "EncoderLabeler":
        self.encoder.to(device)
        self._std, self._mean = self._std.to(device), self._mean.to(device)
        return self

    def readings(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable: (controls (B, P) float32 physical, face logit (B,)). Gradients reach the images."""
        _, out = self.encoder.raw(images)
        P = len(self.names)
        return out[:, :P] * self._std + self._mean, out[:, -1]

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from rig.world.evaluate import plausible_faces

        out = self.encoder(images.float())
        ok = plausible_faces(out, images.shape[-1]).cpu().numpy()
        controls = torch.cat([out.expression, out.jaw_pose, out.head_ypr], 1).double().cpu().numpy()
        return controls, ok


class TrackLabeler:
    """dlib landmarks + the tracker's model fit as a labeler: yaw / pitch / roll / jaw_x (radians)."""

    name = "track"
    differentiable = False
    names = POSE_NAMES + ("jaw_x",)

    def __init__(self, face_model: str = "default"):
        try:
            from rig.instruments.dlib_reader import DlibReader
        except ImportError as e:  # dlib is the [track] extra
            raise InputError(f"--labeler track needs dlib: install rig's [track] extra "
                             f"(pip install '.[track]' in the rig checkout; {e})") from None
        self.reader = DlibReader(face_model=face_model, descriptors=False)

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from rig.stylegan2.generate import to_uint8_nhwc

        r = self.reader.read(to_uint8_nhwc(images))
        deg = np.stack([r.yaw, r.pitch, r.roll, r.jaw], 1)
        ok = r.found & np.all(np.isfinite(deg), 1)
        return np.where(ok[:, None], np.radians(np.nan_to_num(deg)), 0.0), ok


def make_labeler(kind: str, encoder: str = "default", face_model: str = "default"):
    """The labeler called ``kind`` (one of ``LABELERS``)."""
    if kind == "encoder":
        return EncoderLabeler(encoder)
    if kind == "track":
        return TrackLabeler(face_model)
    raise InputError(f"unknown labeler '{kind}'; choose one of {', '.join(LABELERS)}")
