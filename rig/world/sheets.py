"""Pictures of a generator for people to look at: a contact sheet of random samples, a latent
interpolation strip and the widest expressions of generator and world side by side
(``rig eval generator --sheets DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.stylegan2.training.report import save_grid
from rig.world.evaluate import generate_float, preset_directions


@torch.no_grad()
def interpolation_strip(G, rows: int = 4, steps: int = 8, seed: int = 0) -> torch.Tensor:
    """(rows * steps, C, S, S) images: each row walks linearly in W from one random latent to another
    (W interpolation, as StyleGAN's perceptual-path-length uses), endpoints included. A conditional
    G's endpoints get labels drawn by its class prior."""
    from rig.stylegan2.generate import sample_labels

    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((2 * rows, G.z_dim), generator=gen)
    w = G.mapping(z, sample_labels(G, 2 * rows, gen))       # (2 rows, num_ws, w_dim)
    w0, w1 = w[0::2], w[1::2]
    t = torch.linspace(0, 1, steps).view(1, steps, 1, 1)
    ws = (w0[:, None] + t * (w1 - w0)[:, None]).reshape(rows * steps, *w.shape[1:])
    return torch.cat([G.synthesis(ws[i:i + 16], noise_mode="const") for i in range(0, len(ws), 16)])


def write_sheets(G, out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    """Write ``samples.png`` (8 x 8 random samples) and ``interpolation.png`` (4 rows x 8 steps) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "samples.png", out / "interpolation.png"]
    save_grid(generate_float(G, 64, seed), paths[0], cols=8)
    save_grid(interpolation_strip(G, 4, 8, seed), paths[1], cols=8)
    return paths


def preset_extremes(world_images: torch.Tensor, world_expression: np.ndarray, fake_images: torch.Tensor,
                    fake_expression: np.ndarray, presets: dict[str, np.ndarray], k: int = 6) -> torch.Tensor:
    """(len(presets) * 2k, 3, S, S) float images in [-1, 1], one row per preset (sorted by name): the k
    world images that go furthest along the preset's direction by their ground truth, then the k
    generated images that go furthest by the encoder's reading.

    world_images / fake_images: (N, 3, S, S) / (M, 3, S, S) uint8; world_expression (N, E) truth,
    fake_expression (M, E) encoder readings; presets: name -> (E,) coefficients. Presets with no
    expression coefficients are left out; k must not exceed N or M.
    """
    if k > min(len(world_images), len(fake_images)):
        raise InputError(f"preset_extremes: k={k} needs at least k world and k generated images")
    rows = []
    for direction in preset_directions(presets).values():
        for images, expr in ((world_images, world_expression), (fake_images, fake_expression)):
            order = np.argsort(-(np.asarray(expr, np.float64) @ direction), kind="stable")[:k]
            rows.append(images[torch.from_numpy(order.copy())].float() / 127.5 - 1)
    return torch.cat(rows)


def write_preset_extremes(path: str | os.PathLike, world_images: torch.Tensor, world_expression: np.ndarray,
                          fake_images: torch.Tensor, fake_expression: np.ndarray, presets: dict[str, np.ndarray],
                          k: int = 6) -> Path:
    """Write ``preset_extremes`` as one PNG: a row per preset, world on the left, generated on the right
    (k shrinks to the number of images when there are fewer)."""
    k = min(k, len(world_images), len(fake_images))
    save_grid(preset_extremes(world_images, world_expression, fake_images, fake_expression, presets, k), path, cols=2 * k)
    return Path(path)
