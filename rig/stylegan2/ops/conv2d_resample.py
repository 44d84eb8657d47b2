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
from rig.stylegan2.ops.upfirdn2d import filter_size, parse_padding, parse_scaling, upfirdn2d


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding=0, groups: int = 1, flip_weight: bool = True, flip_filter: bool = False,
                    impl: str = "auto") -> torch.Tensor:
    """Convolve ``x`` (N, Cin, H, W) with ``w`` (Cout, Cin/groups, kh, kw), resampling with ``f``.

    Args:
        f: FIR filter from ``setup_filter`` (needed when up or down > 1).
        up, down: integer factors (not both > 1 at once in StyleGAN2, but allowed).
        padding: int / (px, py) / (x0, x1, y0, y1), as for a plain convolution of the kernel.
        impl: passed to ``upfirdn2d`` ('ref', 'fast', 'auto').
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
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter, impl=impl)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # Transposed convolution wants (Cin, Cout/groups, kh, kw) per group.
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                      flip_filter=flip_filter, impl=impl)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                  flip_filter=flip_filter, impl=impl)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
    return x
