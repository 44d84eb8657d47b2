"""The face-parameter encoder: a small CNN that reads rig parameters back out of a world image.

It predicts, from one RGB image of the default world, the expression coefficients, the jaw pose, the
head's yaw / pitch / roll, the 68 iBUG landmarks and a face-present score; its pooled features are
the embedding of the Frechet distance ``rig.world.frd`` uses. It is rig's measuring instrument for
generated images (StyleGAN output has no ground truth; the encoder supplies an estimate).

Targets come from a world dataset's parameter table (``rig.world.dataset``): ``expression`` (N, E),
``jaw_pose`` (N, 3) axis-angle radians, ``head_ypr`` (N, 3) yaw / pitch / roll radians, and
``landmarks_2d`` (N, 68, 2) pixels. Regression targets are standardised with the training set's mean
and standard deviation, which the checkpoint stores beside the weights.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rig.errors import CheckpointError, InputError, ShapeError
from rig.io.atomic import atomic_path

ENCODER_FORMAT = "rig.face_encoder"
TARGET_KEYS = ("expression", "jaw_pose", "head_ypr", "landmarks_2d")
IBUG_EYE_OUTER = (36, 45)  # outer eye corners: the inter-ocular distance of the 300-W benchmark


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of the encoder network.

    input_size: images are resized to this side (pixels) before the CNN.
    widths: channels of the stride-2 stages; the feature vector has ``widths[-1]`` entries.
    n_expression: number of expression coefficients predicted.
    spatial_head: 0 reads the predictions off the globally pooled features (one linear layer);
        N > 0 keeps the last feature map's layout: a 1x1 convolution to 32 channels, flattened, then an
        N-unit hidden layer. Where a mouth corner or an eyelid is matters for expressions and landmarks,
        and pooling throws exactly that away. The FRD features stay the pooled ones either way.
    """

    input_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    n_expression: int = 52
    spatial_head: int = 0

    @property
    def n_regression(self) -> int:
        return self.n_expression + 3 + 3 + 68 * 2


class EncoderOutput(NamedTuple):
    """Predictions for B images. Angles in radians, landmarks in pixels of the input image.

    features: (B, widths[-1]) pooled CNN features (the FRD embedding).
    expression: (B, E). jaw_pose: (B, 3) axis-angle. head_ypr: (B, 3) yaw, pitch, roll.
    landmarks: (B, 68, 2) x right, y down, pixels. face_logit: (B,) log-odds that a face is present.
    """

    features: torch.Tensor
    expression: torch.Tensor
    jaw_pose: torch.Tensor
    head_ypr: torch.Tensor
    landmarks: torch.Tensor
    face_logit: torch.Tensor


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
    )


class FaceEncoder(nn.Module):
    """CNN: ``len(widths)`` stride-2 stages, global average pool, one linear head.

    Input: (B, 3, H, W) float images in [-1, 1] (any square size; resized to ``input_size``).
    Buffers ``target_mean`` / ``target_std`` (n_regression,) undo the target standardisation.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        chans = (3,) + tuple(cfg.widths)
        self.backbone = nn.Sequential(*[_stage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        n_out = cfg.n_regression + 1
        if cfg.spatial_head > 0:
            side = cfg.input_size >> len(cfg.widths)
            if side < 1 or side << len(cfg.widths) != cfg.input_size:
                raise ShapeError(f"FaceEncoder: input_size {cfg.input_size} is not divisible by 2^{len(cfg.widths)}")
            self.head = nn.Sequential(
                nn.Conv2d(cfg.widths[-1], 32, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                nn.Linear(32 * side * side, cfg.spatial_head), nn.LeakyReLU(0.2), nn.Linear(cfg.spatial_head, n_out))
        else:
            self.head = nn.Linear(cfg.widths[-1], n_out)
        self.register_buffer("target_mean", torch.zeros(cfg.n_regression))
        self.register_buffer("target_std", torch.ones(cfg.n_regression))

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (B, F), standardised head output (B, n_regression + 1))."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ShapeError(f"FaceEncoder: expected (B, 3, S, S) images, got {tuple(images.shape)}")
        x = images.float()
        if x.shape[2] != self.cfg.input_size:
            x = F.interpolate(x, size=(self.cfg.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        fmap = self.backbone(x)
        feats = fmap.mean(dim=(2, 3))
        return feats, self.head(fmap if self.cfg.spatial_head > 0 else feats)

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        feats, out = self.raw(images)
        return self.decode(feats, out, images.shape[2])

    def decode(self, feats: torch.Tensor, out: torch.Tensor, image_size: int) -> EncoderOutput:
        reg = out[:, :-1] * self.target_std + self.target_mean
        E = self.cfg.n_expression
        lmk = reg[:, E + 6:].reshape(-1, 68, 2)
        # Landmarks are regressed in [-1, 1] image units so one encoder serves any resolution.
        lmk = (lmk + 1) * (image_size / 2)
        return EncoderOutput(feats, reg[:, :E], reg[:, E:E + 3], reg[:, E + 3:E + 6], lmk, out[:, -1])


def targets_from_params(params: dict[str, np.ndarray] | dict[str, torch.Tensor], image_size: int,
                        n_expression: int) -> torch.Tensor:
    """Stack a parameter table's encoder targets into (N, n_regression) float32, landmarks in [-1, 1]."""
    missing = [k for k in TARGET_KEYS if k not in params]
    if missing:
        raise InputError(f"encoder targets need parameter(s) {', '.join(missing)}")
    def t(k):
        return torch.as_tensor(np.asarray(params[k]), dtype=torch.float32)
    expr = t("expression")
    if expr.shape[1] != n_expression:
        raise ShapeError(f"dataset has {expr.shape[1]} expression coefficients, encoder predicts {n_expression}")
    lmk = t("landmarks_2d") / (image_size / 2) - 1
    return torch.cat([expr, t("jaw_pose"), t("head_ypr"), lmk.reshape(len(lmk), -1)], dim=1)


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class EncoderReport:
    """Held-out accuracy of an encoder (N images).

    landmark_nme_iod: mean landmark error in % of the inter-ocular (outer eye corner) distance.
    yaw_deg, pitch_deg, roll_deg: mean absolute head-angle errors in degrees.
    jaw_deg: mean absolute error of the jaw's opening angle (axis-angle x) in degrees.
    expression_mae: mean absolute expression-coefficient error; expression_std: the targets' mean
        per-coefficient std (what always predicting the mean would roughly score).
    face_accuracy: fraction of faces and non-faces classified correctly (face logit > 0).
    """

    n: int
    landmark_nme_iod: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    jaw_deg: float
    expression_mae: float
    expression_std: float
    face_accuracy: float

    def lines(self) -> list[str]:
        return [f"held-out images: {self.n}",
                f"landmarks: {self.landmark_nme_iod:.2f} % of inter-ocular distance",
                f"head pose: yaw {self.yaw_deg:.2f} deg, pitch {self.pitch_deg:.2f} deg, roll {self.roll_deg:.2f} deg",
                f"jaw opening: {self.jaw_deg:.2f} deg",
                f"expression: MAE {self.expression_mae:.4f} (target std {self.expression_std:.4f})",
                f"face / non-face accuracy: {100 * self.face_accuracy:.1f} %"]


def landmark_nme_iod(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-image mean point error / inter-ocular distance (B,), both (B, 68, 2) in the same units."""
    iod = (true[:, IBUG_EYE_OUTER[0]] - true[:, IBUG_EYE_OUTER[1]]).norm(dim=-1).clamp_min(1e-8)
    return (pred - true).norm(dim=-1).mean(dim=1) / iod


# ---------------------------------------------------------------- file format


def save_encoder(encoder: FaceEncoder, path: str | os.PathLike, report: EncoderReport | None = None) -> None:
    """Write rig's encoder file (safetensors, config and report as JSON metadata), atomically."""
    from safetensors.torch import save_file

    meta = {"format": ENCODER_FORMAT, "config": json.dumps(asdict(encoder.cfg))}
    if report is not None:
        meta["report"] = json.dumps(asdict(report))
    state = {k: v.detach().contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(state, str(tmp), metadata=meta)


def load_encoder(path: str | os.PathLike) -> FaceEncoder:
    """Read an encoder file written by ``save_encoder`` (or ``"default"``: the shipped one); the
    module comes back in eval mode."""
    from safetensors import SafetensorError, safe_open

    if str(path) == "default":
        from rig.paths import default_encoder_path, require_shipped

        path = require_shipped(default_encoder_path(), "the default encoder", "pass --encoder PATH to another encoder")
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: encoder file not found") from None
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from None
    if meta.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{path}: not a rig face-encoder file")
    raw = json.loads(meta["config"])
    cfg = EncoderConfig(**dict(raw, widths=tuple(raw["widths"])))
    enc = FaceEncoder(cfg)
    try:
        enc.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({str(e).splitlines()[0]})") from None
    return enc.eval()


class EncoderReadings(nn.Module):
    """A frozen ``FaceEncoder`` as a differentiable reader of rig parameters, for a reading critic
    (``rig.stylegan2.training.reading_d``): images (B, 3, S, S) in [-1, 1] -> (B, E + 6) expression,
    jaw pose and head yaw/pitch/roll in the encoder's standardised units (about unit std on the world).
    Gradients flow to the images, never into the encoder, which stays in eval mode."""

    def __init__(self, encoder: FaceEncoder):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.n_readings = encoder.cfg.n_expression + 6

    def train(self, mode: bool = True) -> "EncoderReadings":
        return self  # batch-norm statistics stay the trained ones

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.raw(images)[1][:, :self.n_readings]


def load_reader(path: str | os.PathLike) -> EncoderReadings:
    """``EncoderReadings`` of the encoder file ``path`` (or ``"default"``)."""
    return EncoderReadings(load_encoder(path))
