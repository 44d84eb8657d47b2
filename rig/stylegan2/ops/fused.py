"""The fused CPU kernel ``fir_epilogue`` (C++, JIT-built once with ninja) and its PyTorch reference.

``fir_epilogue`` = separable upfirdn2d followed by a layer's whole elementwise tail::

    out = clamp(act(scale[n, c] * upfirdn2d(x, outer(fy, fx), up, down, pad) + noise + bias[c]) * gain)

in one pass over channels-last float32 activations (see ``csrc/fir_epilogue.cpp``). Taps are in
correlation order (already flipped for a convolution). When the extension cannot be built, a
``RuntimeWarning`` is issued once and :func:`fir_epilogue_ref` (plain PyTorch ops) is used; the
kernel has no backward, so autograd callers use the reference ops instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from rig.stylegan2.ops.bias_act import bias_act_ref
from rig.stylegan2.ops.upfirdn2d import upfirdn2d_ref

@dataclass(frozen=True)
class Epilogue:
    """A layer's elementwise tail, applied after its (resampled) convolution; see :func:`fir_epilogue`."""

    scale: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    act: str = "linear"
    alpha: float | None = None
    gain: float = 1.0
    clamp: float | None = None

    def kwargs(self) -> dict:
        return dict(scale=self.scale, noise=self.noise, bias=self.bias, act=self.act, alpha=self.alpha,
                    gain=self.gain, clamp=self.clamp)


def apply_epilogue(x: torch.Tensor, epilogue: Epilogue | None) -> torch.Tensor:
    """``epilogue`` on ``x`` without resampling (identity taps)."""
    if epilogue is None:
        return x
    one = torch.ones([1])
    return fir_epilogue(x, one, one, **epilogue.kwargs())


_SOURCE = Path(__file__).resolve().parent / "csrc" / "fir_epilogue.cpp"
CFLAGS = ("-O3", "-march=native", "-fno-fast-math")
KERNEL_NAME = "rig_sg2_fir_epilogue"
KERNEL_TITLE = "fused StyleGAN2 resample + epilogue"
_ACT_CODES = {"linear": 0, "lrelu": 1}


@functools.lru_cache(maxsize=None)
def fused_extension(source: str = str(_SOURCE), cache_dir: str | None = None) -> ModuleType | None:
    """The compiled extension, or None (with a RuntimeWarning) when it cannot be built. Cached per process."""
    from rig._ext import load_cpp_extension

    return load_cpp_extension(KERNEL_NAME, [source], extra_cflags=CFLAGS, cache_dir=cache_dir, title=KERNEL_TITLE)


def fir_epilogue_ref(x, fy, fx, up=1, down=1, padding=(0, 0, 0, 0), scale=None, noise=None, bias=None,
                     act="linear", alpha=None, gain=1.0, clamp=None) -> torch.Tensor:
    """Reference for :func:`fir_epilogue` from the reference ops (any dtype/device, differentiable)."""
    y = upfirdn2d_ref(x, torch.outer(fy, fx).to(x.device), up=up, down=down, padding=list(padding), flip_filter=True)
    if scale is not None:
        y = y * scale.to(y.dtype)[:, :, None, None]
    if noise is not None:
        y = y + noise.to(y.dtype)[:, None]
    return bias_act_ref(y, bias, act=act, alpha=alpha, gain=gain, clamp=clamp)


def fir_epilogue(x: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor, up: int = 1, down: int = 1,
                 padding=(0, 0, 0, 0), scale: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None, act: str = "linear", alpha: float | None = None,
                 gain: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    """Fused resample + epilogue.

    Args:
        x: (N, C, H, W) activations (any memory format; the kernel wants channels-last float32 on CPU).
        fy, fx: (KY,), (KX,) taps in correlation order.
        up, down: integer factors (both axes). padding: (x0, x1, y0, y1) after zero insertion.
        scale: (N, C) per-sample channel scale (demodulation) or None.
        noise: (1 or N, H', W') per-pixel noise, already scaled, or None.
        bias: (C,) or None. act: 'linear' or 'lrelu' (others go to the reference).
        alpha: lrelu slope (default 0.2). gain: output scale. clamp: +-clamp or None.
    Returns:
        (N, C, H', W') channels-last float32 tensor (reference path: x's dtype / format); bfloat16
        input (from ``--precision bf16`` autocast) is widened to float32 for the kernel.
    """
    x0, x1, y0, y1 = (int(p) for p in padding)
    n, c, h, w = x.shape
    out_h = (h * up + y0 + y1 - fy.numel()) // down + 1
    out_w = (w * up + x0 + x1 - fx.numel()) // down + 1
    ext = fused_extension() if (x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16)
                                and act in _ACT_CODES and out_h > 0 and out_w > 0) else None
    if ext is None or (torch.is_grad_enabled() and x.requires_grad):
        return fir_epilogue_ref(x, fy, fx, up, down, padding, scale, noise, bias, act, alpha, gain, clamp)
    if x.dtype == torch.bfloat16:
        x = x.float()  # bf16 autocast: convolutions run in bf16, the epilogue in float32
    alpha = 0.2 if alpha is None else float(alpha)
    empty = torch.empty(0)
    return ext.fir_epilogue(x.contiguous(memory_format=torch.channels_last), fy.float(), fx.float(), up, down, x0, y0,
                            out_h, out_w, scale.float() if scale is not None else empty,
                            noise.float() if noise is not None else empty,
                            bias.float() if bias is not None else empty, _ACT_CODES[act], alpha, float(gain),
                            -1.0 if clamp is None else float(clamp))
