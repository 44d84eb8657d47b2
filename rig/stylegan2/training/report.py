"""Pictures of a training run: sample grids (PNG) and the loss curves (PNG)."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image

from rig.io.atomic import atomic_path


def image_grid(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float images in [-1, 1] -> one (rows*H, cols*W, 3) uint8 grid, rows = ceil(N / cols), cols = ceil(sqrt N)."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    x = (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    canvas = torch.zeros((rows * cols, 3, h, w), dtype=torch.uint8)
    canvas[:n] = x[:, :3]
    canvas = canvas.reshape(rows, cols, 3, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, 3)
    return canvas.numpy()


def save_grid(images: torch.Tensor, path: str | os.PathLike) -> None:
    """Write ``image_grid(images)`` as a PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(image_grid(images)).save(tmp, format="PNG")


def save_loss_plot(history: list[dict], path: str | os.PathLike) -> bool:
    """Plot every loss series in ``history`` (entries with 'kimg' and loss keys) against kimg.

    Returns False (and writes nothing) when matplotlib is not installed or there is nothing to plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = ["loss_G", "loss_D", "r1", "pl", "real_score", "fake_score"]
    present = [k for k in series if any(k in h for h in history)]
    if not history or not present:
        return False
    fig, axes = plt.subplots(len(present), 1, figsize=(7, 1.8 * len(present)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], present):
        pts = [(h["kimg"], h[key]) for h in history if key in h]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("kimg")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return True
