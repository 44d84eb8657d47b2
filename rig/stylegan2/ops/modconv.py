"""Modulated (and demodulated) convolution, the core of every StyleGAN2 synthesis layer.

For a batch of styles ``s`` (N, Cin) the effective weight of sample ``n`` is::

    w'[n, o, i, :, :] = w[o, i] * s[n, i]
    w''[n, o]         = w'[n, o] / sqrt(sum_{i,kh,kw} w'[n, o]^2 + 1e-8)      (if demodulate)

and the output is ``conv2d_resample(x[n], w''[n]) + noise``. Two mathematically equal ways to
compute it:

* **fused** (``fused_modconv=True``): build the per-sample weights and run one grouped
  convolution (groups = N). This is the reference for inference.
* **non-fused**: scale the *input* by the styles, convolve with the shared weight, scale the
  output by the demodulation coefficients (what training uses; one big convolution for the batch).

``impl='fast'`` picks whichever is faster for the batch (plain convolution with the weight folded
for N == 1, the non-fused form for N > 1), fuses the layer's tail into one kernel, and agrees
with the reference to float32 rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rig.errors import InputError, ShapeError
from rig.stylegan2.ops.conv2d_resample import conv2d_resample, up_conv_geometry
from rig.stylegan2.ops.fused import Epilogue, apply_epilogue, fir_epilogue
from rig.stylegan2.ops.upfirdn2d import separable_taps

# Inputs with at most this many pixels (batch * H * W) run as im2col / col2im + one GEMM on the
# untouched weight: at low resolution the weight is far larger than the activations, and the
# oneDNN path would re-copy the (modulated) weight on every call. Measured (contended 2-core
# machine) to help at 4x4 / 8x8 inputs and to lose from 16x16 up.
GEMM_MAX_PIXELS = 64


class WeightCache:
    """Weight-derived tensors a layer reuses across inference calls; dropped when the weight changes."""

    def __init__(self):
        self._key = None
        self._items: dict[str, torch.Tensor] = {}

    def get(self, weight: torch.Tensor, name: str, make) -> torch.Tensor:
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device, tuple(weight.shape))
        if key != self._key:
            self._key, self._items = key, {}
        if name not in self._items:
            self._items[name] = make(weight.detach())
        return self._items[name]


def _check(x, weight, styles):
    if x.ndim != 4 or weight.ndim != 4 or styles.ndim != 2:
        raise ShapeError(f"modulated_conv2d: expected x (N,Cin,H,W), weight (Cout,Cin,kh,kw), styles (N,Cin); "
                         f"got {tuple(x.shape)}, {tuple(weight.shape)}, {tuple(styles.shape)}")
    n, cin = x.shape[:2]
    if weight.shape[1] != cin or styles.shape != (n, cin):
        raise ShapeError(f"modulated_conv2d: channel/batch mismatch: x {tuple(x.shape)}, weight "
                         f"{tuple(weight.shape)}, styles {tuple(styles.shape)}")


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """(N, Cout) demodulation factors ``1 / sqrt(sum (w * s)^2 + 1e-8)`` for weight (Cout,Cin,kh,kw)
    and styles (N, Cin), computed without materialising the per-sample weights."""
    wsq = weight.square().sum(dim=[2, 3])  # (Cout, Cin)
    return (styles.square() @ wsq.t() + 1e-8).rsqrt()


def modulated_conv2d_ref(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                         demodulate=True, flip_weight=True, fused_modconv=True):
    """Reference modulated convolution (the specification; NVIDIA's numerics, float32 path).

    Args:
        x: (N, Cin, H, W) activations.
        weight: (Cout, Cin, kh, kw) shared weight (already scaled as the layer wants).
        styles: (N, Cin) per-sample input scales.
        noise: None or a tensor broadcastable to the output (N, Cout, H', W'), added after the
            (de)modulated convolution.
        up, down, padding, resample_filter, flip_weight: as in ``conv2d_resample``.
        demodulate: normalise each output channel's effective weight to unit norm.
        fused_modconv: grouped-convolution form (True) or input/output-scaling form (False).
    Returns:
        (N, Cout, H', W') tensor.
    """
    _check(x, weight, styles)
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape

    w = None
    dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight, impl="ref")
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=batch,
                        flip_weight=flip_weight, impl="ref")
    x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise
    return x


def modulated_conv2d_fast(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                          demodulate=True, flip_weight=True, bias=None, act="linear", alpha=None, gain=1.0,
                          clamp=None, cache: WeightCache | None = None):
    """Inference path, including the layer's tail: ``clamp(act(modconv(x) + noise + bias) * gain)``.

    Batch 1 runs one plain convolution with styles and demodulation folded into the weight; larger
    batches scale the input by the styles, convolve with the shared weight and pass the
    demodulation factors to the fused epilogue as a per-sample channel scale. The resampling FIR,
    noise, bias, activation, gain and clamp then run as one fused kernel (``fused.fir_epilogue``).
    ``noise`` broadcasts as (H', W') or (N, 1, H', W'). ``cache`` (owned by the layer) keeps
    weight-derived tensors between calls. Batch 1 folds the styles into whichever is smaller, the
    weight or the input activations; small inputs use an im2col + GEMM path on the unmodified
    weight. Returns channels-last (N, Cout, H', W').
    """
    _check(x, weight, styles)
    batch = x.shape[0]
    def cached(name, make):
        return cache.get(weight, name, make) if cache is not None else make(weight.detach())

    dcoefs = None
    if demodulate:
        wsq = cached("sq", lambda w: w.square().sum(dim=[2, 3]))
        dcoefs = (styles.square() @ wsq.t() + 1e-8).rsqrt()  # (N, Cout)
    out_channels, in_channels, kh, kw = weight.shape
    if noise is not None:
        noise = noise.reshape(-1, *noise.shape[-2:])
    epilogue = Epilogue(scale=dcoefs, noise=noise, bias=bias, act=act, alpha=alpha, gain=gain, clamp=clamp)
    gemm_ok = (x.device.type == "cpu" and x.dtype == torch.float32 and down == 1 and kh == kw and kh % 2 == 1
               and padding == kh // 2 and batch * x.shape[2] * x.shape[3] <= GEMM_MAX_PIXELS
               and ((up == 1 and flip_weight) or (up > 1 and not flip_weight and resample_filter is not None)))
    if gemm_ok:
        xs = (x * styles.to(x.dtype).reshape(batch, -1, 1, 1)).contiguous()
        h, w_ = x.shape[2:]
        if up == 1:
            cols = F.unfold(xs, kh, padding=padding)  # (N, Cin*k*k, H*W)
            w2 = weight.reshape(out_channels, -1)
            y = torch.mm(w2, cols[0]).unsqueeze(0) if batch == 1 else torch.matmul(w2, cols)
            return apply_epilogue(y.reshape(batch, out_channels, h, w_), epilogue)
        pxt, pyt, fir_pad = up_conv_geometry(kw, kh, resample_filter, up, padding)
        # Transposed conv = GEMM to per-tap columns, then col2im (fold) with stride ``up``.
        kt = cached("taps_x_cin", lambda w: w.permute(0, 2, 3, 1).reshape(out_channels * kh * kw, in_channels)
                    .contiguous())
        xs2 = xs.reshape(batch, in_channels, h * w_)
        cols = torch.mm(kt, xs2[0]).unsqueeze(0) if batch == 1 else torch.matmul(kt, xs2)  # (N, Cout*k*k, H*W)
        out_size = ((h - 1) * up + kh - 2 * pyt, (w_ - 1) * up + kw - 2 * pxt)
        y = F.fold(cols, out_size, kh, stride=up, padding=(pyt, pxt))
        taps = separable_taps(resample_filter, False, up ** 2)
        if taps is None:
            return conv2d_resample(xs, weight.to(x.dtype), f=resample_filter, up=up, padding=padding,
                                   flip_weight=flip_weight, impl="fast", epilogue=epilogue)
        return fir_epilogue(y, taps[0], taps[1], padding=fir_pad, **epilogue.kwargs())

    # oneDNN wants channels-last weights beside channels-last activations; a cached channels-last copy
    # of the weight (and products of it, which keep its layout) avoids a weight reorder on every call.
    weight_cl = cached("channels_last", lambda w: w.contiguous(memory_format=torch.channels_last))
    if batch == 1 and weight.numel() <= x[0].numel():
        # One pass over the weight: w[o, i] * s[i] * d[o].
        per_oi = styles.reshape(1, -1) if dcoefs is None else dcoefs.reshape(-1, 1) * styles.reshape(1, -1)
        w = weight_cl * per_oi[:, :, None, None]
        scale = None
    else:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        w = weight_cl
        scale = dcoefs
    epilogue = Epilogue(scale=scale, noise=noise, bias=bias, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                           flip_weight=flip_weight, impl="fast", epilogue=epilogue)


def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True, impl="auto"):
    """Modulated convolution with ``impl`` in {'ref', 'fast', 'auto'}; 'auto' = 'fast' without autograd.

    See :func:`modulated_conv2d_ref` for the arguments and result.
    """
    if impl not in ("ref", "fast", "auto"):
        raise InputError(f"modulated_conv2d: impl must be 'ref', 'fast' or 'auto', got {impl!r}")
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, weight, styles))
    if impl == "ref" or (impl == "auto" and needs_grad):
        return modulated_conv2d_ref(x, weight, styles, noise, up, down, padding, resample_filter, demodulate,
                                    flip_weight, fused_modconv)
    return modulated_conv2d_fast(x, weight, styles, noise, up, down, padding, resample_filter, demodulate,
                                 flip_weight)
