"""The StyleGAN2 generator (mapping + synthesis) and the public network classes.

``Generator(config)(z, c)`` -> image (N, img_channels, R, R) float32, values nominally in [-1, 1].
State-dict names are those of stylegan2-ada-pytorch's ``Generator``, so its weights load 1:1:
``synthesis.b64.conv0.affine.weight``, ``mapping.w_avg``, ...
"""

from __future__ import annotations

import torch
from torch import nn

from rig.stylegan2.config import DiscriminatorConfig, GeneratorConfig, MappingConfig, SynthesisConfig
from rig.stylegan2.discriminator import Discriminator
from rig.stylegan2.mapping import MappingNetwork
from rig.stylegan2.synthesis import SynthesisNetwork

__all__ = ["Generator", "Discriminator", "GeneratorConfig", "DiscriminatorConfig", "MappingConfig",
           "SynthesisConfig", "MappingNetwork", "SynthesisNetwork"]


class Generator(nn.Module):
    """z (N, z_dim), c (N, c_dim) or None -> image (N, img_channels, R, R) float32."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.c_dim = config.c_dim
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.synthesis = SynthesisNetwork(config.w_dim, config.img_resolution, config.img_channels, config.synthesis)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, self.num_ws, config.mapping)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, impl: str = "auto",
                generator: torch.Generator | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, impl=impl)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv,
                              impl=impl, generator=generator)
