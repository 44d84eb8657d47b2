"""Training and held-out evaluation of the face-parameter encoder on a world dataset.

Positives are world images with their ground-truth parameters; negatives for the face-present score
are made on the fly in three kinds, the ways a generator that has not learnt faces fails: an image
with its tiles shuffled (same colours and textures, no face layout), an image blurred down to 4-8 px
(the right colour layout, no features), and a smooth random colour field (early-training blobs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rig.errors import InputError
from rig.instruments.encoder import (
    EncoderConfig,
    EncoderReport,
    FaceEncoder,
    landmark_nme_iod,
    targets_from_params,
)


@dataclass(frozen=True)
class EncoderTrainConfig:
    """steps x batch images; AdamW with a cosine-decayed ``lr``; the last ``holdout`` images are held out.

    negative_fraction: extra non-faces (``make_negatives``) per batch, as a fraction of ``batch``.
    tiles: the shuffle grid is tiles x tiles.
    """

    steps: int = 3000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    holdout: int = 500
    negative_fraction: float = 0.375
    tiles: int = 4
    seed: int = 0


def shuffle_tiles(images: torch.Tensor, tiles: int, gen: torch.Generator) -> torch.Tensor:
    """(B, C, S, S) -> the same images with their ``tiles`` x ``tiles`` blocks in a random order each."""
    B, C, S, _ = images.shape
    t = S // tiles
    x = images[:, :, :t * tiles, :t * tiles].reshape(B, C, tiles, t, tiles, t).permute(0, 2, 4, 1, 3, 5)
    x = x.reshape(B, tiles * tiles, C, t, t)
    perm = torch.stack([torch.randperm(tiles * tiles, generator=gen) for _ in range(B)])
    x = x[torch.arange(B)[:, None], perm]
    x = x.reshape(B, tiles, tiles, C, t, t).permute(0, 3, 1, 4, 2, 5).reshape(B, C, t * tiles, t * tiles)
    return F.interpolate(x, size=(S, S), mode="nearest") if t * tiles != S else x


def blur_away(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, C, S, S) -> each image area-downsampled to 4 or 8 px and enlarged back (bilinear)."""
    S = images.shape[2]
    small = int(torch.randint(0, 2, (), generator=gen)) * 4 + 4
    x = F.adaptive_avg_pool2d(images, small)
    return F.interpolate(x, size=(S, S), mode="bilinear", align_corners=False)


def colour_fields(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 3, size, size) smooth random colour fields in [-1, 1] (3x3 to 8x8 random grids, bicubic)."""
    cells = int(torch.randint(3, 9, (), generator=gen))
    x = torch.rand((n, 3, cells, cells), generator=gen) * 2 - 1
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def make_negatives(images: torch.Tensor, tiles: int, gen: torch.Generator) -> torch.Tensor:
    """Non-faces made from (B, C, S, S) float images: thirds of tile-shuffled, blurred, colour fields."""
    B, _, S, _ = images.shape
    a, b = B // 3, 2 * B // 3
    return torch.cat([shuffle_tiles(images[:a], tiles, gen), blur_away(images[a:b], gen),
                      colour_fields(B - b, S, gen)])


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()


def _group_losses(pred: torch.Tensor, target: torch.Tensor, n_expr: int) -> torch.Tensor:
    """Mean squared error per target group (expression, jaw, head angles, landmarks), summed, so the
    136 landmark numbers do not drown the rest."""
    edges = [0, n_expr, n_expr + 3, n_expr + 6, pred.shape[1]]
    return sum(F.mse_loss(pred[:, a:b], target[:, a:b]) for a, b in zip(edges[:-1], edges[1:]))


def train_encoder(images: torch.Tensor, params: dict, enc_cfg: EncoderConfig, cfg: EncoderTrainConfig,
                  progress: bool = True) -> tuple[FaceEncoder, EncoderReport, list[float]]:
    """Train on all but the last ``cfg.holdout`` images; return (encoder in eval mode, held-out report,
    per-step training loss).

    images: (N, 3, S, S) uint8. params: the dataset's parameter table (numpy arrays, N rows).
    """
    from tqdm import tqdm

    N, S = images.shape[0], images.shape[2]
    if N <= cfg.holdout or cfg.holdout < 1:
        raise InputError(f"encoder training: {N} images cannot spare {cfg.holdout} held-out images")
    targets = targets_from_params(params, S, enc_cfg.n_expression)
    n_train = N - cfg.holdout
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        enc = FaceEncoder(enc_cfg)
    enc.target_mean.copy_(targets[:n_train].mean(0))
    enc.target_std.copy_(targets[:n_train].std(0).clamp_min(1e-4))
    std_targets = (targets - enc.target_mean) / enc.target_std
    opt = torch.optim.AdamW(enc.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / cfg.steps, 1.0))))
    n_neg = max(1, int(round(cfg.batch * cfg.negative_fraction)))
    losses: list[float] = []
    enc.train()
    for _ in tqdm(range(cfg.steps), desc="encoder", unit="step", disable=not progress):
        idx = torch.randint(0, n_train, (cfg.batch,), generator=gen)
        pos = _to_float(images[idx])
        neg = make_negatives(_to_float(images[torch.randint(0, n_train, (n_neg,), generator=gen)]), cfg.tiles, gen)
        _, out = enc.raw(torch.cat([pos, neg]))
        loss = _group_losses(out[:cfg.batch, :-1], std_targets[idx], enc_cfg.n_expression)
        labels = torch.cat([torch.ones(cfg.batch), torch.zeros(n_neg)])
        loss = loss + F.binary_cross_entropy_with_logits(out[:, -1], labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    enc.eval()
    report = evaluate_encoder(enc, images[n_train:], {k: v[n_train:] for k, v in params.items()}, tiles=cfg.tiles, seed=cfg.seed)
    return enc, report, losses


@torch.no_grad()
def predict(enc: FaceEncoder, images: torch.Tensor, batch: int = 256):
    """Run ``enc`` (eval mode) over (N, 3, S, S) uint8 or float images in chunks; one EncoderOutput of N rows."""
    outs = [enc(_to_float(images[i:i + batch])) for i in range(0, len(images), batch)]
    return type(outs[0])(*(torch.cat(parts) for parts in zip(*outs)))


@torch.no_grad()
def evaluate_encoder(enc: FaceEncoder, images: torch.Tensor, params: dict, tiles: int = 4, seed: int = 0) -> EncoderReport:
    """Held-out errors of ``enc`` on (N, 3, S, S) images with ground-truth ``params`` (see ``EncoderReport``)."""
    S = images.shape[2]
    E = enc.cfg.n_expression
    truth = targets_from_params(params, S, E)
    out = predict(enc, images)
    lmk_true = (truth[:, E + 6:].reshape(-1, 68, 2) + 1) * (S / 2)
    ang = (out.head_ypr - truth[:, E + 3:E + 6]).abs().mean(0).rad2deg()
    jaw = (out.jaw_pose[:, 0] - truth[:, E]).abs().mean().rad2deg()
    gen = torch.Generator().manual_seed(seed + 1)
    negatives = make_negatives(_to_float(images), tiles, gen)
    neg_logits = predict(enc, negatives).face_logit
    acc = (float((out.face_logit > 0).float().sum()) + float((neg_logits <= 0).float().sum())) / (2 * len(images))
    return EncoderReport(
        n=len(images),
        landmark_nme_iod=100 * float(landmark_nme_iod(out.landmarks, lmk_true).mean()),
        yaw_deg=float(ang[0]), pitch_deg=float(ang[1]), roll_deg=float(ang[2]), jaw_deg=float(jaw),
        expression_mae=float((out.expression - truth[:, :E]).abs().mean()),
        expression_std=float(truth[:, :E].std(0).mean()),
        face_accuracy=acc,
    )
