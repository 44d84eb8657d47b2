"""Pictures of a training run: sample grids (PNG) and the loss curves (PNG)."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image

from rig.io.atomic import atomic_path


def image_grid(images: torch.Tensor, cols: int | None = None) -> np.ndarray:
    """(N, C, H, W) float images in [-1, 1] -> one (rows*H, cols*W, 3) uint8 grid, rows = ceil(N / cols),
    cols = ceil(sqrt N) unless given."""
    from rig.stylegan2.generate import to_uint8_nhwc

    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    x = to_uint8_nhwc(images.detach())
    if c == 1:
        x = np.repeat(x, 3, axis=3)
    canvas = np.zeros((rows * cols, h, w, 3), dtype=np.uint8)
    canvas[:n] = x[..., :3]
    return canvas.reshape(rows, cols, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)


def save_grid(images: torch.Tensor, path: str | os.PathLike, cols: int | None = None) -> None:
    """Write ``image_grid(images, cols)`` as a PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(image_grid(images, cols)).save(tmp, format="PNG")


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
    # The main losses first, then each extra critic's (suffixes _read, _<region>) in order of appearance.
    main = ["loss_G", "loss_D", "r1", "pl", "real_score", "fake_score"]
    skip = {"kimg", "sec_per_kimg", "wall_seconds"}
    extra = list(dict.fromkeys(k for h in history for k in h if k not in skip and k not in main))
    present = [k for k in main if any(k in h for h in history)] + extra
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
