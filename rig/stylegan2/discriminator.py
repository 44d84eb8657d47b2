"""StyleGAN2 discriminator: image (N, C, R, R) (+ label c) -> logits (N, 1).

Blocks ``bR ... b8`` halve the resolution (``resnet`` / ``skip`` / ``orig``); the epilogue ``b4``
appends the minibatch standard deviation, convolves, and ends in two fully-connected layers.
With ``c_dim > 0`` the label is mapped to ``cmap`` and the output is a projection onto it.
State-dict names match stylegan2-ada-pytorch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rig.errors import InputError, ShapeError
from rig.stylegan2.config import DiscriminatorConfig, MappingConfig
from rig.stylegan2.layers import Conv2dLayer, FullyConnectedLayer
from rig.stylegan2.mapping import MappingNetwork
from rig.stylegan2.ops.upfirdn2d import downsample2d, setup_filter


class DiscriminatorBlock(nn.Module):
    """(x (N, in, R, R) or None, img (N, C, R, R) or None) -> (x (N, out, R/2, R/2), img at R/2 or None)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None, use_fp16: bool = False,
                 fp16_channels_last: bool = False, freeze_layers: int = 0):
        super().__init__()
        if in_channels not in (0, tmp_channels):
            raise InputError(f"DiscriminatorBlock: in_channels must be 0 or {tmp_channels}, got {in_channels}")
        if architecture not in ("orig", "skip", "resnet"):
            raise InputError(f"DiscriminatorBlock: unknown architecture {architecture!r}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:
            # Freeze-D: the first ``freeze_layers`` layers of the whole network keep fixed weights.
            idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32: bool = False, impl: str = "auto"):
        device = (x if x is not None else img).device
        on_cuda = device.type == "cuda"
        dtype = torch.float16 if self.use_fp16 and not force_fp32 and on_cuda else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 and on_cuda else torch.contiguous_format
        if x is not None:
            if x.shape[1:] != (self.in_channels, self.resolution, self.resolution):
                raise ShapeError(f"DiscriminatorBlock b{self.resolution}: expected x (N, {self.in_channels}, "
                                 f"{self.resolution}, {self.resolution}), got {tuple(x.shape)}")
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            if img is None or img.shape[1:] != (self.img_channels, self.resolution, self.resolution):
                raise ShapeError(f"DiscriminatorBlock b{self.resolution}: expected img (N, {self.img_channels}, "
                                 f"{self.resolution}, {self.resolution}), got {None if img is None else tuple(img.shape)}")
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img, impl=impl)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter, impl=impl) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5), impl=impl)
            x = self.conv0(x, impl=impl)
            x = self.conv1(x, gain=np.sqrt(0.5), impl=impl)
            x = y + x
        else:
            x = self.conv0(x, impl=impl)
            x = self.conv1(x, impl=impl)
        return x, img


class MinibatchStdLayer(nn.Module):
    """Append the mean (over channels and pixels) of the per-group standard deviation as extra channels.

    x (N, C, H, W) -> (N, C + num_channels, H, W); N must be a multiple of min(group_size, N).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g or c % f:
            raise ShapeError(f"MinibatchStdLayer: batch {n} must be a multiple of the group size {g} "
                             f"and channels {c} of {f}")
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """b4: (x (N, in, 4, 4), img, cmap (N, cmap_dim) or None) -> logits (N, 1) float32."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, impl: str = "auto"):
        if x.shape[1:] != (self.in_channels, self.resolution, self.resolution):
            raise ShapeError(f"DiscriminatorEpilogue: expected x (N, {self.in_channels}, {self.resolution}, "
                             f"{self.resolution}), got {tuple(x.shape)}")
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            img = img.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            x = x + self.fromrgb(img, impl=impl)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x, impl=impl)
        x = self.fc(x.flatten(1), impl=impl)
        x = self.out(x, impl=impl)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """img (N, img_channels, R, R), c (N, c_dim) or None -> logits (N, 1) float32."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        log2 = int(np.log2(config.img_resolution))
        if config.img_resolution < 4 or 2 ** log2 != config.img_resolution:
            raise InputError(f"Discriminator: img_resolution must be a power of two >= 4, got {config.img_resolution}")
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        fp16_resolution = max(2 ** (log2 + 1 - config.num_fp16_res), 8)
        cmap_dim = config.channels(4) if config.cmap_dim is None else config.cmap_dim
        if config.c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        block_cfg = config.block
        layer_idx = 0
        for res in self.block_resolutions:
            in_channels = config.channels(res) if res < config.img_resolution else 0
            block = DiscriminatorBlock(in_channels, config.channels(res), config.channels(res // 2), resolution=res,
                                       img_channels=config.img_channels, first_layer_idx=layer_idx,
                                       architecture=config.architecture, activation=block_cfg.activation,
                                       resample_filter=block_cfg.resample_filter, conv_clamp=config.conv_clamp,
                                       use_fp16=res >= fp16_resolution,
                                       fp16_channels_last=block_cfg.fp16_channels_last,
                                       freeze_layers=block_cfg.freeze_layers)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if config.c_dim > 0:
            mapping_cfg = MappingConfig(**{**config.mapping.__dict__, "w_avg_beta": None})
            self.mapping = MappingNetwork(z_dim=0, c_dim=config.c_dim, w_dim=cmap_dim, num_ws=None, config=mapping_cfg)
        ep = config.epilogue
        self.b4 = DiscriminatorEpilogue(config.channels(4), cmap_dim=cmap_dim, resolution=4,
                                        img_channels=config.img_channels, architecture=config.architecture,
                                        mbstd_group_size=ep.mbstd_group_size, mbstd_num_channels=ep.mbstd_num_channels,
                                        activation=ep.activation, conv_clamp=config.conv_clamp)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                impl: str = "auto") -> torch.Tensor:
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ShapeError(f"Discriminator: expected img (N, {self.img_channels}, {self.img_resolution}, "
                             f"{self.img_resolution}), got {tuple(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32, impl=impl)
        cmap = self.mapping(None, c, impl=impl) if self.c_dim > 0 else None
        return self.b4(x, img, cmap, impl=impl)
