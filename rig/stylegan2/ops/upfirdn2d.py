"""upfirdn2d: upsample (zero insertion), pad, FIR-filter, downsample — StyleGAN2's resampling op.

Semantics (identical to stylegan2-ada-pytorch's op, so trained weights behave the same):

1. Upsample ``x`` (N, C, H, W) by inserting ``up - 1`` zeros after every pixel along each axis.
2. Pad by (x0, x1, y0, y1) pixels (negative values crop).
3. Convolve with the 2-D filter ``f`` (true convolution, i.e. correlation with the flipped
   filter, unless ``flip_filter``), scaled by ``gain`` (split over the filter's axes).
4. Keep every ``down``-th pixel.

Output size: ``(H * up + y0 + y1 - fh) // down + 1`` (and likewise for W).

``upfirdn2d_ref`` is the specification. The ``fast`` path factors a rank-1 2-D filter into two
1-D passes and computes upsampling in polyphase form (no multiply-by-zero work); it agrees with
the reference to float32 rounding. ``impl='auto'`` uses it when no gradient is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rig.errors import InputError, ShapeError


def parse_scaling(scaling) -> tuple[int, int]:
    """int or (sx, sy) -> (sx, sy), both >= 1."""
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise InputError(f"upfirdn2d: scaling factors must be >= 1, got {scaling}")
    return sx, sy


def parse_padding(padding) -> tuple[int, int, int, int]:
    """int, (px, py) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    if len(padding) != 4:
        raise InputError(f"upfirdn2d: padding must have 1, 2 or 4 entries, got {padding}")
    return tuple(padding)


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(fw, fh) of a 1-D (separable) or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ShapeError(f"upfirdn2d: filter must be 1-D or 2-D, got shape {tuple(f.shape)}")
    fw = f.shape[-1]
    fh = f.shape[0]
    return int(fw), int(fh)


def setup_filter(f, device=None, normalize: bool = True, flip_filter: bool = False, gain: float = 1.0,
                 separable: bool | None = None) -> torch.Tensor:
    """Build a float32 FIR filter from a list/array, the way the checkpoints' filters were built.

    A 1-D list becomes its outer product with itself (a 2-D filter) unless ``separable`` (default:
    only for 1-D filters with >= 8 taps). ``normalize`` divides by the sum; ``gain`` is spread over
    the axes (``gain ** (ndim / 2)``). ``[1, 3, 3, 1]`` -> (4, 4) filter summing to 1.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ShapeError(f"setup_filter: expected a non-empty 1-D or 2-D filter, got shape {tuple(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _check_inputs(x: torch.Tensor, f: torch.Tensor | None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ShapeError(f"upfirdn2d: x must be a 4-D (N, C, H, W) tensor, got {getattr(x, 'shape', type(x))}")
    if f is not None and (f.ndim not in (1, 2) or not f.is_floating_point()):
        raise ShapeError(f"upfirdn2d: f must be a 1-D or 2-D float tensor, got {tuple(f.shape)} {f.dtype}")


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0,
                  flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Reference upfirdn2d (the specification); see the module docstring.

    Args:
        x: (N, C, H, W) float tensor.
        f: (fh, fw) or separable (fw,) float32 filter; None = identity.
        up, down: int or (x, y) integer factors.
        padding: int, (px, py) or (x0, x1, y0, y1) pixels, applied after upsampling.
    Returns:
        (N, C, H', W') tensor of x's dtype.
    """
    _check_inputs(x, f)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape

    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)

    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        fk = f[None, None].repeat(c, 1, 1)
        x = F.conv2d(x, fk.unsqueeze(2), groups=c)
        x = F.conv2d(x, fk.unsqueeze(3), groups=c)
    return x[:, :, ::downy, ::downx]


def _rank1_factors(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(fy, fx) with f == outer(fy, fx) for a rank-1 2-D filter (or a separable 1-D one), else None."""
    if f.ndim == 1:
        return f, f
    idx = int(f.abs().argmax())
    i, j = divmod(idx, f.shape[1])
    fy = f[:, j]
    fx = f[i, :] / f[i, j]
    if torch.allclose(torch.outer(fy, fx), f, rtol=1e-6, atol=1e-9 * float(f.abs().max())):
        return fy, fx
    return None


def separable_taps(f: torch.Tensor | None, flip_filter: bool = False, gain: float = 1.0):
    """(ty, tx) float32 tap lists in correlation order with the gain folded in, or None if ``f`` is not separable.

    ``upfirdn2d(x, f, ..., flip_filter, gain)`` == correlation with ``outer(ty, tx)`` on the zero-inserted, padded input.
    """
    if f is None:
        one = torch.ones([1])
        return one, one
    factors = _rank1_factors(f.detach().float().cpu())
    if factors is None:
        return None
    fy, fx = factors
    g = gain ** 0.5
    ty = (fy if flip_filter else fy.flip(0)) * g
    tx = (fx if flip_filter else fx.flip(0)) * g
    return ty.contiguous(), tx.contiguous()


def _upfirdn2d_fast(x, f, up, down, padding, flip_filter, gain):
    from rig.stylegan2.ops.fused import fir_epilogue

    _check_inputs(x, f)
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    taps = separable_taps(f, flip_filter, gain)
    if taps is None or upx != upy or downx != downy:
        return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    return fir_epilogue(x, taps[0], taps[1], up=upx, down=downx, padding=parse_padding(padding))


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0, flip_filter: bool = False,
              gain: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """upfirdn2d with an implementation switch ``impl`` in {'ref', 'fast', 'auto'}.

    'auto' = 'fast' when autograd is off or x needs no gradient, else 'ref'. See
    :func:`upfirdn2d_ref` for the arguments.
    """
    if impl not in ("ref", "fast", "auto"):
        raise InputError(f"upfirdn2d: impl must be 'ref', 'fast' or 'auto', got {impl!r}")
    if impl == "ref" or (impl == "auto" and torch.is_grad_enabled() and x.requires_grad):
        return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    return _upfirdn2d_fast(x, f, up, down, padding, flip_filter, gain)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1.0, impl="auto"):
    """Upsample by ``up`` with FIR filter ``f``, output exactly ``up`` times the input size
    (plus ``padding``); the filter is scaled by ``up**2`` to keep the mean."""
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1.0, impl="auto"):
    """Low-pass with ``f`` and keep every ``down``-th pixel; output = input size / down."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def filter2d(x, f, padding=0, flip_filter=False, gain=1.0, impl="auto"):
    """Filter with ``f`` keeping the size (plus ``padding``)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
