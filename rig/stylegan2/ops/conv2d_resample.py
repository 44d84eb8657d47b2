"""2-D convolution fused with FIR up/down-sampling (StyleGAN2's ``conv2d_resample``).

Defines what an "up" or "down" convolution layer computes, which the trained weights depend on:

* ``up > 1``: equivalent to ``upfirdn2d(x, f, up, padding=p, gain=up**2)`` followed by the
  convolution, computed cheaply as a strided transposed convolution and then the FIR filter.
* ``down > 1``: FIR filter, then a strided convolution (or, for 1x1 kernels, filter+decimate first).
* ``flip_weight=True`` means correlation (what ``torch.nn.functional.conv2d`` does);
  ``False`` means true convolution. Up-sampling layers use ``False``.

Padding bookkeeping follows the filter size so that output = input * up / down.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rig.errors import ShapeError
from rig.stylegan2.ops.fused import Epilogue, apply_epilogue, fir_epilogue
from rig.stylegan2.ops.upfirdn2d import filter_size, parse_padding, separable_taps, upfirdn2d


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True, channels_last=False):
    if channels_last:
        # oneDNN's native layout: avoids a reorder of the activations around every convolution.
        x = x.contiguous(memory_format=torch.channels_last)
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding=0, groups: int = 1, flip_weight: bool = True, flip_filter: bool = False,
                    impl: str = "auto", epilogue: Epilogue | None = None) -> torch.Tensor:
    """Convolve ``x`` (N, Cin, H, W) with ``w`` (Cout, Cin/groups, kh, kw), resampling with ``f``.

    Args:
        f: FIR filter from ``setup_filter`` (needed when up or down > 1).
        up, down: integer factors (not both > 1 at once in StyleGAN2, but allowed).
        padding: int / (px, py) / (x0, x1, y0, y1), as for a plain convolution of the kernel.
        impl: passed to ``upfirdn2d`` ('ref', 'fast', 'auto').
        epilogue: optional elementwise tail (bias, noise, activation...) fused into the last step;
            used by the fast inference path (the up-sampling FIR and the tail run as one kernel).
    Returns:
        (N, Cout, H*up/down, W*up/down) tensor (for padding = kernel // 2).
    """
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1] * groups:
        raise ShapeError(f"conv2d_resample: x{tuple(x.shape)} and w{tuple(w.shape)} (groups={groups}) do not fit")
    if w.dtype != x.dtype:
        raise ShapeError(f"conv2d_resample: dtype mismatch x {x.dtype} vs w {w.dtype}")
    out_channels, in_per_group, kh, kw = w.shape
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ShapeError(f"conv2d_resample: up/down must be ints >= 1, got {up}, {down}")
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    fast = impl == "fast" or (impl == "auto" and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)))
    if epilogue is not None and not fast:
        raise ShapeError("conv2d_resample: an epilogue is only supported on the fast inference path")

    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # A 1x1 kernel commutes with the FIR, so run it at the lower resolution: decimate first for
    # down, convolve first for up.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return apply_epilogue(_conv(x, w, groups=groups, flip_weight=flip_weight, channels_last=fast), epilogue)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight, channels_last=fast)
        return _final_fir(x, f, up, [px0, px1, py0, py1], up ** 2, flip_filter, impl, epilogue)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        x = _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight, channels_last=fast)
        return apply_epilogue(x, epilogue)

    if up > 1:
        # Transposed convolution wants (Cin, Cout/groups, kh, kw) per group.
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        pxt, pyt, (px0, px1, py0, py1) = _transposed_geometry(kw, kh, up, (px0, px1, py0, py1))
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight,
                  channels_last=fast)
        if down > 1:
            x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], gain=up ** 2,
                          flip_filter=flip_filter, impl=impl)
            return apply_epilogue(upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl), epilogue)
        return _final_fir(x, f, 1, [px0, px1, py0, py1], up ** 2, flip_filter, impl, epilogue)

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        x = _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight, channels_last=fast)
        return apply_epilogue(x, epilogue)

    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                  flip_filter=flip_filter, impl=impl)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight, channels_last=fast)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
    return apply_epilogue(x, epilogue)


def _transposed_geometry(kw, kh, up, pads):
    """For an up-sampling conv with total padding ``pads`` (after the up/FIR bookkeeping): the
    transposed convolution's own padding (pxt, pyt) and the FIR padding that follows it."""
    px0, px1, py0, py1 = pads
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    return pxt, pyt, (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)


def up_conv_geometry(kw: int, kh: int, f: torch.Tensor, up: int, padding) -> tuple[int, int, tuple]:
    """(pxt, pyt, fir_padding) of ``conv2d_resample(up=up, down=1)``: a stride-``up`` transposed conv
    with padding (pyt, pxt), then the FIR ``f`` (gain up**2) with ``fir_padding``."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    pads = (px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2)
    return _transposed_geometry(kw, kh, up, pads)


def _final_fir(x, f, up, padding, gain, flip_filter, impl, epilogue):
    """The closing FIR of an up-sampling conv, fused with the epilogue when one is given."""
    if epilogue is None:
        return upfirdn2d(x, f, up=up, padding=padding, gain=gain, flip_filter=flip_filter, impl=impl)
    taps = separable_taps(f, flip_filter, gain)
    if taps is None:
        x = upfirdn2d(x, f, up=up, padding=padding, gain=gain, flip_filter=flip_filter, impl=impl)
        return apply_epilogue(x, epilogue)
    return fir_epilogue(x, taps[0], taps[1], up=up, padding=padding, **epilogue.kwargs())
