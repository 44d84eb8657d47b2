"""FFHQ-style alignment: a square crop placed from the eyes and the mouth, in render pixels.

The recipe is the one the FFHQ dataset used (Karras et al. 2019): the crop's half-side is
max(2 * |eye_to_eye|, 1.8 * |eye_to_mouth|), its centre sits 10 % of the eye-to-mouth vector below
the eye midpoint, and its x axis follows the eye line combined with the perpendicular of the
eye-to-mouth vector (so the eyes come out level). With ``rotate=False`` the crop keeps the image axes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _perp(v: torch.Tensor) -> torch.Tensor:
    """Rotate (..., 2) vectors by +90 degrees in image coordinates: (x, y) -> (-y, x)."""
    return torch.stack([-v[..., 1], v[..., 0]], dim=-1)


def ffhq_crop_frame(eye_left: torch.Tensor, eye_right: torch.Tensor, mouth_left: torch.Tensor,
                    mouth_right: torch.Tensor, rotate: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop centre c and half-axes x, y, each (B, 2) in pixels, from (B, 2) image points.

    ``eye_left`` / ``mouth_left`` are the points on the image's left. The crop is the square with
    corners c - x - y (top-left) ... c + x + y (bottom-right).
    """
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    half = torch.maximum(eye_to_eye.norm(dim=-1) * 2.0, eye_to_mouth.norm(dim=-1) * 1.8)
    if rotate:
        x = eye_to_eye - _perp(eye_to_mouth)
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    else:
        x = torch.zeros_like(eye_avg)
        x[:, 0] = 1
    x = x * half[:, None]
    y = _perp(x)
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def crop_images(images: torch.Tensor, c: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """Resample (B, C, H, W) images over the crop squares into (B, C, size, size), bilinear, zeros outside."""
    B, _, H, W = images.shape
    t = (torch.arange(size, dtype=images.dtype) + 0.5) / size * 2 - 1  # -1..1 across the crop
    pts = (c[:, None, None, :] + t[None, None, :, None] * x[:, None, None, :] + t[None, :, None, None] * y[:, None, None, :])
    grid = torch.stack([pts[..., 0] / W * 2 - 1, pts[..., 1] / H * 2 - 1], dim=-1).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def to_crop_pixels(points: torch.Tensor, c: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """(B, L, 2) render pixels -> (B, L, 2) pixels of the ``size`` x ``size`` crop."""
    q = points - c[:, None, :]
    u = (q * x[:, None, :]).sum(-1) / x.square().sum(-1)[:, None]
    v = (q * y[:, None, :]).sum(-1) / y.square().sum(-1)[:, None]
    return torch.stack([(u + 1) * size / 2, (v + 1) * size / 2], dim=-1)
