"""The two plain StyleGAN2 layers: equalized-lr fully-connected and (resampling) convolution.

Weights are stored unscaled (``randn``); the equalized-learning-rate gain is applied in the
forward pass, exactly as in the checkpoints these layers load (state-dict names ``weight`` /
``bias``; ``Conv2dLayer`` also carries its FIR filter as buffer ``resample_filter``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rig.errors import ShapeError
from rig.stylegan2.ops.bias_act import activation_spec, bias_act
from rig.stylegan2.ops.conv2d_resample import conv2d_resample
from rig.stylegan2.ops.fused import Epilogue
from rig.stylegan2.ops.upfirdn2d import setup_filter


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (weight * lr / sqrt(in)).T + bias * lr).

    Shapes: x (N, in_features) -> (N, out_features); weight (out, in); bias (out,).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        activation_spec(activation)
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor, impl: str = "auto") -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ShapeError(f"FullyConnectedLayer: expected (N, {self.in_features}), got {tuple(x.shape)}")
        if impl == "fast" or (impl == "auto" and not (torch.is_grad_enabled()
                                                     and (x.requires_grad or self.weight.requires_grad))):
            return self._forward_fast(x)
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation, impl=impl)

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        # Scale the (N, out) product instead of copying the (out, in) weight with its gain.
        w = self.weight.to(x.dtype).t()
        if self.bias is None:
            y = torch.mm(x, w).mul_(self.weight_gain)
        else:
            b = (self.bias.to(x.dtype) * self.bias_gain).unsqueeze(0).expand(x.shape[0], -1)
            y = torch.addmm(b, x, w, alpha=self.weight_gain)
        if self.activation == "linear":
            return y
        return bias_act(y, None, act=self.activation, impl="fast")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution with optional FIR up/down-sampling, bias, activation and clamp.

    Shapes: x (N, in, H, W) -> (N, out, H*up/down, W*up/down). ``trainable=False`` stores weight
    and bias as buffers (NVIDIA's freeze-D), which keeps the same state-dict names.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None, channels_last: bool = False, trainable: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = activation_spec(activation).default_gain
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias_t = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_t) if bias_t is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_t is not None:
                self.register_buffer("bias", bias_t)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1.0, impl: str = "auto") -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"Conv2dLayer: expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = self.up == 1  # up-sampling layers were trained as true convolutions
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if impl == "fast" or (impl == "auto" and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))):
            epilogue = Epilogue(bias=b, act=self.activation, gain=act_gain, clamp=act_clamp)
            return conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                                   padding=self.padding, flip_weight=flip_weight, impl="fast", epilogue=epilogue)
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=flip_weight, impl="ref")
        return bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp, impl="ref")
