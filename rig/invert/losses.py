"""Image similarity and the encoder's differentiable face terms, for inversion.

Images everywhere are (B, 3, S, S) float in [-1, 1], as ``G.synthesis`` returns them.

* ``psnr``: peak signal-to-noise ratio in dB on the [0, 1] scale (the PNG's 0..255 / 255).
* ``ms_ssim``: multi-scale SSIM (Wang et al. 2003) with an 11-tap Gaussian window (sigma 1.5) on
  grey-free per-channel statistics. The standard five scales need >= 161 px; at rig's 64 px three
  scales fit (64, 32, 16 px), weighted by the standard weights of the first three scales,
  renormalised to sum to 1. Contrast-structure terms are clamped at 0 before the product, so the
  gradient stays defined for dissimilar images.
* ``EncoderTerms``: the face-parameter encoder (``rig.instruments.encoder``) frozen, giving per-stage
  feature maps (channel-normalised, as a perceptual distance) and its 68 landmarks, both
  differentiable with respect to the image. No downloaded network (no VGG / LPIPS) is involved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al.'s five-scale weights
_C1, _C2 = 0.01 ** 2, 0.03 ** 2


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped as a PNG would be."""
    return ((images + 1) / 2).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB between two image batches in [-1, 1] (peak 1 on the [0, 1] scale)."""
    mse = (to_unit(a) - to_unit(b)).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-x.pow(2) / (2 * sigma ** 2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of (B, C, H, W)."""
    C = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def _ssim_terms(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(luminance * contrast-structure (B,), contrast-structure (B,)), each averaged over pixels and channels."""
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a.pow(2)
    var_b = _blur(b * b, g) - mu_b.pow(2)
    cov = _blur(a * b, g) - mu_a * mu_b
    cs = (2 * cov + _C2) / (var_a + var_b + _C2)
    lum = (2 * mu_a * mu_b + _C1) / (mu_a.pow(2) + mu_b.pow(2) + _C1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def scales_for(size: int, window: int = 11) -> int:
    """How many dyadic scales of a ``size`` px image keep the window inside (at most five)."""
    n = 0
    while n < len(_MS_WEIGHTS) and (size >> n) >= window:
        n += 1
    return max(n, 1)


def ms_ssim(a: torch.Tensor, b: torch.Tensor, scales: int | None = None) -> torch.Tensor:
    """(B,) multi-scale SSIM in [0, 1] of two batches in [-1, 1] (see the module docstring)."""
    x, y = to_unit(a).float(), to_unit(b).float()
    n = scales or scales_for(min(x.shape[-2:]))
    w = torch.tensor(_MS_WEIGHTS[:n], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    g = _gaussian_window(dtype=x.dtype, device=x.device)
    out = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    for k in range(n):
        full, cs = _ssim_terms(x, y, g)
        term = full if k == n - 1 else cs
        out = out * term.clamp_min(1e-6) ** w[k]
        if k < n - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out


class EncoderTerms:
    """The frozen face-parameter encoder as differentiable inversion terms.

    ``features(images)`` -> list of per-stage maps (B, C_k, H_k, W_k), each unit-normalised over channels;
    ``distance(fa, fb)`` -> (B,) mean squared difference over stages (0 for identical images);
    ``landmarks(images)`` -> (B, 68, 2) pixels of the image.
    """

    def __init__(self, encoder="default"):
        from rig.instruments.encoder import load_encoder

        self.encoder = (load_encoder(encoder) if isinstance(encoder, str) else encoder).eval().requires_grad_(False)

    def to(self, device) -> "EncoderTerms":
        self.encoder.to(device)
        return self

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        s = self.encoder.cfg.input_size
        x = images.float()
        if x.shape[-1] != s:
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    def features_and_landmarks(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = self._input(images)
        feats = []
        for stage in self.encoder.backbone:
            x = stage(x)
            feats.append(x / x.pow(2).sum(1, keepdim=True).add(1e-8).sqrt())
        head = self.encoder.head(x if self.encoder.cfg.spatial_head > 0 else x.mean(dim=(2, 3)))
        lmk = self.encoder.decode(x.mean(dim=(2, 3)), head, images.shape[-1]).landmarks
        return feats, lmk

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.features_and_landmarks(images)[0]

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_landmarks(images)[1]

    @staticmethod
    def distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        return sum((a - b).pow(2).sum(1).flatten(1).mean(1) for a, b in zip(fa, fb)) / len(fa)
