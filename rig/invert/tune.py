"""Pivotal tuning (Roich et al. 2022): fine-tune a copy of ``G`` so it draws the target at the found latent.

The copy's synthesis weights are trained for ``steps`` Adam steps on the reconstruction loss at the
pivot ``ws`` (``rig.invert.optimize.reconstruction_loss``), plus a locality term: for a random latent
pulled part of the way towards the pivot, the tuned copy must draw what the original draws there
(pixel MSE), so the edit directions of RigNet around the pivot keep working. The original ``G`` is
never touched. The tuned copy records the original's identity as its parent
(``rig.stylegan2.identity``), so the original's RigNet and inverter apply to it with a notice; it is
saved beside the face file and only ever loaded from there (``rig.invert.pipeline``).
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass

import torch

from rig.errors import InputError
from rig.invert.losses import EncoderTerms
from rig.invert.optimize import reconstruction_loss


@dataclass(frozen=True)
class TuneConfig:
    steps: int = 100
    lr: float = 3e-4
    w_locality: float = 10.0
    locality_alpha: float = 0.5  # how far (0..1) the locality latent is pulled towards the pivot

    def validate(self) -> "TuneConfig":
        if not 0 <= self.steps <= 100_000:
            raise InputError(f"--tune {self.steps}: choose 0..100000")
        if not self.lr > 0 or not self.w_locality >= 0 or not 0 <= self.locality_alpha <= 1:
            raise InputError("tune: lr must be positive, w_locality >= 0, locality_alpha in 0..1")
        return self

    def to_json(self) -> dict:
        return asdict(self)


def tune_generator(G, terms: EncoderTerms, target: torch.Tensor, ws: torch.Tensor, cfg: TuneConfig = TuneConfig(),
                   seed: int = 0, progress: bool = False) -> tuple[torch.nn.Module, list[dict]]:
    """(tuned copy of ``G``, history) for the pivot ``ws`` (B, num_ws, w_dim) and ``target`` (B, 3, S, S)."""
    from tqdm import tqdm

    from rig.stylegan2.generate import sample_labels
    from rig.stylegan2.identity import forget_identity, generator_identity

    cfg = cfg.validate()
    parent = getattr(G, "parent_identity", None) or generator_identity(G)
    tuned = copy.deepcopy(G)
    forget_identity(tuned)
    tuned.eval().requires_grad_(False)
    tuned.synthesis.requires_grad_(True)
    opt = torch.optim.Adam(tuned.synthesis.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(seed)
    pivot = ws.detach()
    history = []
    for step in tqdm(range(cfg.steps), desc="tune G", unit="step", disable=not progress, leave=False):
        loss, record = reconstruction_loss(tuned, terms, pivot, target)
        if cfg.w_locality > 0:
            with torch.no_grad():
                z = torch.randn(len(pivot), G.z_dim, generator=g).to(pivot.device)
                c = sample_labels(G, len(pivot), g)
                w_r = G.mapping(z, None if c is None else c.to(pivot.device))
                w_r = w_r + cfg.locality_alpha * (pivot - w_r)
                ref = G.synthesis(w_r, noise_mode="const")
            local = (tuned.synthesis(w_r, noise_mode="const") - ref).pow(2).mean()
            loss = loss + cfg.w_locality * local
            record["locality"] = local.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record["loss"] = loss.item()
        history.append(record)
    tuned.eval().requires_grad_(False)
    forget_identity(tuned)
    tuned.parent_identity = parent
    for attr in ("class_names", "class_prior"):
        if hasattr(G, attr):
            setattr(tuned, attr, getattr(G, attr))
    return tuned, history


def save_tuned_generator(path: str | os.PathLike, tuned) -> None:
    """The tuned copy as a rig network file (``G_ema``) recording its parent's identity and class labels."""
    from rig.stylegan2.checkpoints import save_networks

    extra = {"parent_identity": tuned.parent_identity}
    if getattr(tuned, "class_names", None):
        extra["labels"] = {"class_names": list(tuned.class_names), "class_prior": list(tuned.class_prior)}
    save_networks(path, {"G_ema": tuned}, extra=extra)
