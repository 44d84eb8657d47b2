"""What a network read from a file must satisfy before rig hands it out.

``build_checked`` first builds the network on PyTorch's ``meta`` device (shapes only, no memory)
and compares every state-dict name, shape and (for NVIDIA records) module class with the file's
tensors, so a forged config that would need gigabytes is refused before anything is allocated.
Only then is the network built for real and loaded. Every floating tensor must be finite.
``probe_generator`` then runs the mapping network and the synthesis blocks up to 32 px on two
seeded latents (a few milliseconds even for a 1024 px network) and refuses a generator whose
output is already NaN or infinite there (finite weights large enough to overflow).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from rig.errors import CheckpointError

PROBE_RESOLUTION = 32


def _describe(names: list[str]) -> str:
    return f"{names[:5]}{'...' if len(names) > 5 else ''}"


def check_layout(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], source: str, what: str) -> None:
    """Same names and shapes as ``expected`` (a state dict, possibly on the meta device)."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: {what} does not match the architecture its config describes "
                              f"(missing {_describe(missing)}, unexpected {_describe(unexpected)})")
    for name, ref in expected.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise CheckpointError(f"{source}: {what}.{name} has shape {tuple(tensors[name].shape)}, "
                                  f"expected {tuple(ref.shape)}")


def check_finite(tensors: dict[str, torch.Tensor], source: str, what: str) -> None:
    """Every floating-point tensor holds only finite values."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{source}: {what}.{name} holds NaN or infinite values (a corrupted file?)")


def build_checked(factory: Callable[[], nn.Module], tensors: dict[str, torch.Tensor], classes: dict[str, str] | None,
                  source: str, what: str) -> nn.Module:
    """``factory()`` loaded with ``tensors``, after checking layout (on ``meta``), classes and finiteness."""
    with torch.device("meta"):
        shape_only = factory()
    check_layout(shape_only.state_dict(), tensors, source, what)
    if classes is not None:
        ours = {name: type(m).__name__ for name, m in shape_only.named_modules()}
        for name, cls in classes.items():
            if name and ours.get(name) != cls:
                raise CheckpointError(f"{source}: {what}.{name} is a {cls}, rig builds a {ours.get(name)}")
    check_finite(tensors, source, what)
    module = factory()
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            value.copy_(tensors[name].to(dtype=value.dtype))
    return module


def probe_generator(G: nn.Module, source: str, what: str = "G") -> None:
    """Mapping and the first synthesis blocks (up to 32 px) give finite values on two seeded latents."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([2, G.z_dim], generator=gen)
    c = torch.zeros([2, G.c_dim])
    if G.c_dim:
        c[:, 0] = 1
    with torch.no_grad():
        ws = G.mapping(z, c if G.c_dim else None, skip_w_avg_update=True)
        ok = bool(torch.isfinite(ws).all())
        if ok:
            x, img = G.synthesis.run_blocks(ws, max_resolution=PROBE_RESOLUTION, noise_mode="const")
            ok = all(bool(torch.isfinite(t).all()) for t in (x, img) if t is not None)
    if not ok:
        raise CheckpointError(f"{source}: {what} produces NaN or infinite values on a test latent "
                              "(its weights are corrupted or out of range)")
