"""Synthesis network: W+ latents (N, num_ws, w_dim) -> image (N, img_channels, R, R), float32.

Blocks ``b4, b8, ..., bR`` each hold a const input (b4) or an up-sampling modulated conv
(``conv0``), a modulated conv (``conv1``), and a toRGB layer (``skip`` architecture: every block;
``orig`` / ``resnet``: the last). State-dict names match stylegan2-ada-pytorch.

Noise modes: ``random`` (fresh N(0,1) per call, from ``generator`` if given), ``const`` (the
stored ``noise_const`` buffers), ``none``.

Float16: blocks among the ``num_fp16_res`` highest resolutions run in float16 only on CUDA, as
NVIDIA's code is meant to run; on other devices they run in float32 (what NVIDIA's code gives with
``force_fp32=True``), with ``conv_clamp`` applied all the same.

``impl``: 'ref' = the reference ops (NVIDIA's numerics), 'fast' = folded/fused inference path,
'auto' = 'fast' unless a gradient is needed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rig.errors import InputError, ShapeError
from rig.stylegan2.config import SynthesisConfig
from rig.stylegan2.layers import Conv2dLayer, FullyConnectedLayer
from rig.stylegan2.ops.bias_act import activation_spec, bias_act
from rig.stylegan2.ops.modconv import WeightCache, modulated_conv2d_fast, modulated_conv2d_ref
from rig.stylegan2.ops.upfirdn2d import setup_filter, upsample2d

NOISE_MODES = ("random", "const", "none")


def _use_fast(impl: str, *tensors: torch.Tensor) -> bool:
    if impl not in ("ref", "fast", "auto"):
        raise InputError(f"impl must be 'ref', 'fast' or 'auto', got {impl!r}")
    if impl == "auto":
        return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
    return impl == "fast"


def _fp16_prenormalize(weight, styles):
    """Keep float16 intermediates in range (only used for float16 activations)."""
    in_ch, kh, kw = weight.shape[1:]
    weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
    styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    return weight, styles


class SynthesisLayer(nn.Module):
    """Modulated conv + noise + bias + activation. x (N, in, R/up, R/up), w (N, w_dim) -> (N, out, R, R)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu", resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = activation_spec(activation).default_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=memory_format))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self._weight_cache = WeightCache()  # inference-only derived tensors, not part of the state

    def _noise(self, x, noise_mode, generator):
        if noise_mode not in NOISE_MODES:
            raise InputError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength
        noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, generator=generator)
        return noise * self.noise_strength

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0, impl: str = "auto", generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] * self.up != self.resolution:
            raise ShapeError(f"SynthesisLayer: expected x (N, {self.in_channels}, {self.resolution // self.up}, "
                             f"{self.resolution // self.up}), got {tuple(x.shape)}")
        fast = _use_fast(impl, x, w, self.weight)
        styles = self.affine(w, impl=impl)
        noise = self._noise(x, noise_mode, generator)
        flip_weight = self.up == 1  # up-sampling layers were trained as true convolutions
        weight = self.weight
        if x.dtype == torch.float16:
            weight, styles = _fp16_prenormalize(weight, styles)
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if fast:
            return modulated_conv2d_fast(x, weight, styles, noise=noise, up=self.up, padding=self.padding,
                                         resample_filter=self.resample_filter, flip_weight=flip_weight,
                                         bias=self.bias, act=self.activation, gain=act_gain, clamp=act_clamp,
                                         cache=self._weight_cache if weight is self.weight else None)
        y = modulated_conv2d_ref(x, weight, styles, noise=noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, flip_weight=flip_weight,
                                 fused_modconv=fused_modconv)
        return bias_act(y, self.bias.to(y.dtype), act=self.activation, gain=act_gain, clamp=act_clamp, impl="ref")


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation: x (N, in, R, R), w (N, w_dim) -> (N, img_channels, R, R)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True, impl: str = "auto") -> torch.Tensor:
        fast = _use_fast(impl, x, w, self.weight)
        styles = self.affine(w, impl=impl) * self.weight_gain
        if fast and self.weight.shape[2:] == (1, 1):
            return _torgb_fast(x, self.weight, styles, self.bias, self.conv_clamp)
        if fast:
            return modulated_conv2d_fast(x, self.weight, styles, demodulate=False, bias=self.bias,
                                         clamp=self.conv_clamp)
        y = modulated_conv2d_ref(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(y, self.bias.to(y.dtype), clamp=self.conv_clamp, impl="ref")


def _torgb_fast(x, weight, styles, bias, clamp):
    """1x1 modulated conv without demodulation as (N, H*W, Cin) @ (N, Cin, Cout) on channels-last pixels."""
    n, cin, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, cin)  # a view for channels-last x
    wmod = (weight[:, :, 0, 0].to(x.dtype).unsqueeze(0) * styles.to(x.dtype).unsqueeze(1)).transpose(1, 2)
    y = torch.baddbmm(bias.to(x.dtype).reshape(1, 1, -1), pixels, wmod)
    if clamp is not None:
        y = y.clamp_(-clamp, clamp)
    return y.reshape(n, h, w, -1).permute(0, 3, 1, 2)


class SynthesisBlock(nn.Module):
    """One resolution: (x at R/2 or None, img at R/2 or None, ws (N, num_conv + num_torgb, w_dim))
    -> (x (N, out, R, R), img (N, img_channels, R, R) float32 or None)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, config: SynthesisConfig, use_fp16: bool = False):
        super().__init__()
        if config.architecture not in ("orig", "skip", "resnet"):
            raise InputError(f"SynthesisBlock: unknown architecture {config.architecture!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = config.architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and config.fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(config.resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer_kw = dict(w_dim=w_dim, resolution=resolution, kernel_size=config.kernel_size, use_noise=config.use_noise,
                        activation=config.activation, resample_filter=config.resample_filter,
                        conv_clamp=config.conv_clamp, channels_last=self.channels_last)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kw)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kw)
        self.num_conv += 1
        if is_last or config.architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=config.conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and config.architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=config.resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, impl: str = "auto", generator=None):
        if ws.ndim != 3 or ws.shape[1:] != (self.num_conv + self.num_torgb, self.w_dim):
            raise ShapeError(f"SynthesisBlock b{self.resolution}: ws must be (N, {self.num_conv + self.num_torgb}, "
                             f"{self.w_dim}), got {tuple(ws.shape)}")
        w_iter = iter(ws.unbind(dim=1))
        on_cuda = ws.device.type == "cuda"
        dtype = torch.float16 if self.use_fp16 and not force_fp32 and on_cuda else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 and on_cuda else torch.contiguous_format
        if fused_modconv is None:
            fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)
        layer_kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl, generator=generator)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), **layer_kw)
        else:
            if x is None or x.shape[1:] != (self.in_channels, self.resolution // 2, self.resolution // 2):
                raise ShapeError(f"SynthesisBlock b{self.resolution}: expected x (N, {self.in_channels}, "
                                 f"{self.resolution // 2}, {self.resolution // 2}), got {None if x is None else tuple(x.shape)}")
            x = x.to(dtype=dtype, memory_format=memory_format)
            if self.architecture == "resnet":
                y = self.skip(x, gain=np.sqrt(0.5), impl=impl)
                x = self.conv0(x, next(w_iter), **layer_kw)
                x = self.conv1(x, next(w_iter), gain=np.sqrt(0.5), **layer_kw)
                x = y + x
            else:
                x = self.conv0(x, next(w_iter), **layer_kw)
                x = self.conv1(x, next(w_iter), **layer_kw)

        if img is not None:
            img = upsample2d(img, self.resample_filter, impl=impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv, impl=impl)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, img_resolution, img_resolution) float32."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, config: SynthesisConfig = SynthesisConfig()):
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise InputError(f"SynthesisNetwork: img_resolution must be a power of two >= 4, got {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - config.num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = config.channels(res // 2) if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_channels, config.channels(res), w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, config=config,
                                   use_fp16=res >= fp16_resolution)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, impl: str = "auto",
                generator: torch.Generator | None = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ShapeError(f"SynthesisNetwork: ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        _, img = self.run_blocks(ws, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv,
                                 impl=impl, generator=generator)
        return img

    def run_blocks(self, ws: torch.Tensor, max_resolution: int | None = None, noise_mode: str = "random",
                   force_fp32: bool = False, fused_modconv: bool | None = None, impl: str = "auto",
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features, image so far) after the blocks up to ``max_resolution`` px (None: all of them).

        The image is None before the first toRGB (``orig`` / ``resnet`` have it only in the last block).
        """
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            if max_resolution is not None and res > max_resolution:
                break
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode, force_fp32=force_fp32,
                           fused_modconv=fused_modconv, impl=impl, generator=generator)
        return x, img
