"""Exponential moving average of the generator's weights (StyleGAN's G_ema)."""

from __future__ import annotations

import torch


def ema_beta(batch: int, ema_kimg: float, ema_rampup: float | None, cur_nimg: int) -> float:
    """Per-step decay so the EMA's half-life is ``ema_kimg`` thousand images.

    With ``ema_rampup`` the half-life grows with training: min(ema_kimg*1000, cur_nimg*ema_rampup)
    images, so early (random) weights are forgotten fast.
    """
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model for parameters; buffers (w_avg, noise constants) copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
