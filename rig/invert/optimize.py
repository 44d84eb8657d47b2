"""W+ optimisation of aligned crops, from the inverter's one-pass guess (``rig invert --steps N``).

The latent is optimised in the inverter's standardised units (``(ws - w_mean) / w_std``): first a
shared offset on every layer (W, the generator's own space, for ``w_phase`` of the steps), then one
offset per layer (W+). The loss is the training's image terms (``rig.invert.inverter_train.image_losses``:
pixel MSE, multi-scale SSIM, the encoder's features and landmarks) plus ``w_reg`` times the squared
distance from the start, which keeps the latent where the generator draws faces. Adam with a cosine
learning-rate decay; the generator uses constant noise, as ``rig generate`` does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from rig.errors import InputError
from rig.invert.inverter_train import image_losses
from rig.invert.losses import EncoderTerms, psnr

LOSS_WEIGHTS = {"pixel": 20.0, "ssim": 2.0, "feature": 2.0, "landmark": 0.05}


@dataclass(frozen=True)
class OptimizeConfig:
    """steps: Adam steps (0: the inverter's guess as it is); lr: in std units of W; w_phase: share of
    the steps with one offset for all layers; w_reg: weight of |u - u_start|^2."""

    steps: int = 150
    lr: float = 0.05
    w_phase: float = 0.3
    w_reg: float = 0.02

    def validate(self) -> "OptimizeConfig":
        if not 0 <= self.steps <= 100_000:
            raise InputError(f"--steps {self.steps}: choose 0..100000")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not 0 <= self.w_phase <= 1 or not self.w_reg >= 0:
            raise InputError("invert: lr must be positive, w_phase in 0..1, w_reg >= 0")
        return self

    def to_json(self) -> dict:
        return asdict(self)


def reconstruction_loss(G, terms: EncoderTerms, ws: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """(per-batch scalar loss, its terms as floats) of ``G(ws)`` against ``target``."""
    parts = image_losses(G, terms, ws, target)
    return sum(LOSS_WEIGHTS[k] * v for k, v in parts.items()), {k: v.item() for k, v in parts.items()}


def optimize_latents(G, terms: EncoderTerms, target: torch.Tensor, ws_start: torch.Tensor, w_mean: torch.Tensor,
                     w_std: torch.Tensor, cfg: OptimizeConfig = OptimizeConfig(),
                     progress: bool = False) -> tuple[torch.Tensor, list[dict]]:
    """Optimise W+ (B, num_ws, w_dim) so ``G`` draws ``target`` (B, 3, S, S) in [-1, 1].

    Returns (ws (B, num_ws, w_dim), history: one record per step with the loss terms and the batch's
    mean PSNR). ``G`` is not changed (its parameters get no gradient)."""
    from tqdm import tqdm

    cfg = cfg.validate()
    G.requires_grad_(False)
    u0 = ((ws_start.detach() - w_mean) / w_std)
    shared = torch.zeros_like(u0[:, :1], requires_grad=True)
    per_layer = torch.zeros_like(u0, requires_grad=True)
    opt = torch.optim.Adam([shared, per_layer], lr=cfg.lr, betas=(0.9, 0.99))
    switch = int(round(cfg.steps * cfg.w_phase))
    history = []
    bar = tqdm(range(cfg.steps), desc="invert", unit="step", disable=not progress, leave=False)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1)))
        u = u0 + shared + (per_layer if step >= switch else per_layer.detach())
        ws = w_mean + w_std * u
        loss, record = reconstruction_loss(G, terms, ws, target)
        loss = loss + cfg.w_reg * (u - u0).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step < switch:
            per_layer.grad = None
        opt.step()
        record["loss"] = loss.item()
        history.append(record)
        if step % 10 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{record['loss']:.4f}")
    with torch.no_grad():
        ws = w_mean + w_std * (u0 + shared + per_layer)
        if history:
            history[-1]["psnr"] = psnr(G.synthesis(ws, noise_mode="const"), target).mean().item()
    return ws.detach(), history
