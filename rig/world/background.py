"""Backgrounds of the default world: two-colour linear gradients and blurred colour noise.

Every function draws from the numpy ``Generator`` it is given and returns linear RGB (S, S, 3)
float32 in [0, 1], so a background is a pure function of its seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

BACKGROUND_KINDS = ("gradient", "noise")


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A linear-RGB colour of random hue, saturation and brightness (muted more often than not)."""
    base = rng.uniform(0.02, 0.8) ** 1.5
    tint = rng.uniform(0, 1, 3) ** 2
    sat = rng.uniform(0, 0.8)
    return np.clip(base * ((1 - sat) + sat * tint / max(tint.max(), 1e-6)), 0, 1)


def gradient_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Linear blend between two random colours along a random direction."""
    a, b = _random_colour(rng), _random_colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    t = np.clip(0.5 + (xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.7, 1.5), 0, 1)[..., None]
    return ((1 - t) * a + t * b).astype(np.float32)


def noise_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Colour noise on a coarse random grid, bicubically enlarged (a soft, blurred texture)."""
    cells = int(rng.integers(3, 9))
    a, b = _random_colour(rng), _random_colour(rng)
    field = rng.uniform(0, 1, (1, 1, cells, cells)).astype(np.float32)
    up = F.interpolate(torch.from_numpy(field), size=(size, size), mode="bicubic", align_corners=False)[0, 0].numpy()
    t = np.clip(up, 0, 1)[..., None]
    grain = rng.normal(0, 0.01, (size, size, 1)).astype(np.float32)
    return np.clip((1 - t) * a + t * b + grain, 0, 1).astype(np.float32)


def draw_background(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32 linear RGB background of ``kind`` (one of ``BACKGROUND_KINDS``)."""
    return {"gradient": gradient_background, "noise": noise_background}[kind](rng, size)
