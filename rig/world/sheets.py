"""Pictures of a generator for people to look at: a contact sheet of random samples and a latent
interpolation strip (``rig eval generator --sheets DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rig.stylegan2.training.report import save_grid
from rig.world.evaluate import generate_float


@torch.no_grad()
def interpolation_strip(G, rows: int = 4, steps: int = 8, seed: int = 0) -> torch.Tensor:
    """(rows * steps, C, S, S) images: each row walks linearly in W from one random latent to another
    (W interpolation, as StyleGAN's perceptual-path-length uses), endpoints included."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((2 * rows, G.z_dim), generator=gen)
    w = G.mapping(z, None)                                   # (2 rows, num_ws, w_dim)
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
