"""Brute-force loop implementations used as independent references by the op tests (float64 numpy)."""

import numpy as np


def upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0, flip_filter=False):
    """Zero-insert by ``up``, pad (x0, x1, y0, y1) (negative crops), convolve with f*gain, keep every ``down``-th."""
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    x0, x1, y0, y1 = pad
    hp, wp = h * up + y0 + y1, w * up + x0 + x1
    p = np.zeros((n, c, hp, wp))
    for yy in range(hp):
        for xx in range(wp):
            sy, sx = yy - y0, xx - x0
            if 0 <= sy < h * up and 0 <= sx < w * up:
                p[:, :, yy, xx] = u[:, :, sy, sx]
    fk = np.asarray(f, dtype=np.float64) * gain
    if fk.ndim == 1:
        fk = np.outer(fk, fk)
    fh, fw = fk.shape
    oh, ow = (hp - fh) // down + 1, (wp - fw) // down + 1
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            acc = np.zeros((n, c))
            for i in range(fh):
                for j in range(fw):
                    # True convolution: output (oy, ox) pairs input offset (i, j) with tap (fh-1-i, fw-1-j).
                    tap = fk[i, j] if flip_filter else fk[fh - 1 - i, fw - 1 - j]
                    acc += p[:, :, oy * down + i, ox * down + j] * tap
            out[:, :, oy, ox] = acc
    return out


def correlate2d(x, w, stride=1, padding=0):
    """Direct 2-D cross-correlation like torch's conv2d: x (N, I, H, W), w (O, I, kh, kw)."""
    n, ci, h, wd = x.shape
    co, _, kh, kw = w.shape
    p = np.zeros((n, ci, h + 2 * padding, wd + 2 * padding))
    p[:, :, padding:padding + h, padding:padding + wd] = x
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, co, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            patch = p[:, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]  # (n, ci, kh, kw)
            out[:, :, oy, ox] = np.einsum("nikl,oikl->no", patch, w)
    return out


def modulated_conv(x, w, styles, demodulate=True, up=1, down=1, f=None):
    """Per-sample modulated conv for 3x3 (padding 1) or 1x1 kernels, StyleGAN2 resampling conventions."""
    outs = []
    k = w.shape[-1]
    for n in range(x.shape[0]):
        wn = w * styles[n][None, :, None, None]
        if demodulate:
            wn = wn / np.sqrt((wn ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        xn = x[n:n + 1]
        if up == 2:
            # Up-sampling layers are true convolutions of the zero-inserted, FIR-filtered input.
            fw = f.shape[0]
            p0, p1 = k // 2 + (fw + 1) // 2, k // 2 + (fw - 2) // 2
            xu = upfirdn2d(xn, f, up=2, pad=(p0, p1, p0, p1), gain=4)
            outs.append(correlate2d(xu, wn[:, :, ::-1, ::-1]))
        elif down == 2:
            fw = f.shape[0]
            p = k // 2 + (fw - 1) // 2
            xf = upfirdn2d(xn, f, pad=(p, p, p, p))
            outs.append(correlate2d(xf, wn, stride=2))
        else:
            outs.append(correlate2d(xn, wn, padding=k // 2))
    return np.concatenate(outs)
