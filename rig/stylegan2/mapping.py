"""Mapping network: latent z (and optional class label c) -> intermediate latents w.

Output is W+ of shape (N, num_ws, w_dim) (the same w repeated), optionally truncated towards the
tracked average ``w_avg``: ``w' = w_avg + psi * (w - w_avg)`` for the first ``truncation_cutoff``
ws (all when None). State-dict names: ``embed.*`` (if c_dim), ``fc{i}.weight/bias``, ``w_avg``.
"""

from __future__ import annotations

import torch
from torch import nn

from rig.errors import ShapeError
from rig.stylegan2.config import MappingConfig
from rig.stylegan2.layers import FullyConnectedLayer


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, config: MappingConfig = MappingConfig()):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = config.num_layers
        self.w_avg_beta = config.w_avg_beta
        embed_features = w_dim if config.embed_features is None else config.embed_features
        if c_dim == 0:
            embed_features = 0
        layer_features = w_dim if config.layer_features is None else config.layer_features
        features = [z_dim + embed_features] + [layer_features] * (config.num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(config.num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1],
                                                           activation=config.activation,
                                                           lr_multiplier=config.lr_multiplier))
        if num_ws is not None and config.w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, skip_w_avg_update: bool = False,
                impl: str = "auto") -> torch.Tensor:
        """z (N, z_dim) any float dtype (cast to float32), c (N, c_dim) -> ws (N, num_ws, w_dim) float32
        (or (N, w_dim) when num_ws is None). In training mode, updates ``w_avg`` unless skipped."""
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ShapeError(f"MappingNetwork: z must be (N, {self.z_dim}), got {None if z is None else tuple(z.shape)}")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ShapeError(f"MappingNetwork: c must be (N, {self.c_dim}), got {None if c is None else tuple(c.shape)}")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32), impl=impl))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x, impl=impl)

        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None or not hasattr(self, "w_avg"):
                raise ShapeError("MappingNetwork: truncation needs w_avg, which this network does not track")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x
