"""``rig train inverter``: an image -> W+ inverter for one generator.

Two phases, one resumable loop:

1. ``latent`` (G not in the loop; fast): pairs ``(G(ws), ws)`` drawn from the generator itself (labels
   by its class prior, half of them style-mixed so W+ is not only W), the inverter regresses ``ws``
   in units of W's per-dimension std.
2. ``image``: the same pairs plus world renders (``--world DIR``, a ``rig world sample`` folder:
   real targets the generator never drew), with ``G`` and the face-parameter encoder in the loop:
   ``G(inverter(x))`` against ``x`` by pixel MSE, multi-scale SSIM, the encoder's feature distance and
   its landmarks (``rig.invert.losses``); the latent loss stays on for the pairs.

The run folder holds ``snapshot.pt`` (atomic, every ``snapshot_s`` seconds, read back with
``weights_only=True``), ``log.jsonl``, ``losses.png`` and, at the end, ``inverter.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rig.errors import InputError
from rig.invert.inverter import Inverter, InverterConfig, save_inverter
from rig.invert.losses import EncoderTerms, ms_ssim
from rig.io.atomic import atomic_path
from rig.io.run_log import end_step, plot_losses

PHASES = ("latent", "image")


@dataclass(frozen=True)
class InverterTrainConfig:
    """Steps, batches, learning rate and loss weights (see the module docstring)."""

    latent_steps: int = 3000
    image_steps: int = 3200
    batch: int = 24
    world_batch: int = 8
    lr: float = 1e-3
    mix_prob: float = 0.5
    w_latent: float = 1.0
    w_pixel: float = 20.0
    w_ssim: float = 2.0
    w_feature: float = 2.0
    w_landmark: float = 0.05
    seed: int = 0
    snapshot_s: float = 60.0

    def validate(self) -> "InverterTrainConfig":
        for name in ("latent_steps", "image_steps", "world_batch"):
            if getattr(self, name) < 0:
                raise InputError(f"train inverter: {name} must be >= 0")
        if self.batch < 1:
            raise InputError("train inverter: batch must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError("train inverter: lr must be a positive number")
        return self

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class _State:
    phase: str = "latent"
    step: int = 0
    elapsed_s: float = 0.0


SNAPSHOT_KEYS = ("net", "opt", "phase", "step", "elapsed_s", "config")


def snapshot_state(net: Inverter, opt: torch.optim.Optimizer, state: _State, config_text: str) -> dict:
    """What ``snapshot.pt`` holds (``SNAPSHOT_KEYS``): the inverter's and Adam's state dicts, the phase /
    step / elapsed seconds and the run's settings as sorted JSON text."""
    return {"net": net.state_dict(), "opt": opt.state_dict(), "phase": state.phase, "step": state.step,
            "elapsed_s": state.elapsed_s, "config": config_text}


def restore_snapshot(path: str | os.PathLike, net: Inverter, opt: torch.optim.Optimizer, config_text: str) -> _State:
    """Load ``snapshot.pt`` into this run's freshly built inverter and optimiser; return the progress.
    Every tensor is checked against them first (``rig.io.torch_snapshot``): a malformed file is a
    ``CheckpointError`` naming it, a snapshot of other settings an ``InputError``."""
    from rig.io.torch_snapshot import (load_module_state, load_optimizer_state, read_torch_snapshot,
                                       snapshot_float, snapshot_int, snapshot_str)

    label = str(path)
    snap = read_torch_snapshot(path, SNAPSHOT_KEYS, "inverter training snapshot")
    if snap["config"] != config_text:
        raise InputError(f"{label}: the snapshot was trained with other settings; resume with the same ones")
    state = _State(snapshot_str(snap, "phase", label, PHASES + ("done",)), snapshot_int(snap, "step", label),
                   snapshot_float(snap, "elapsed_s", label))
    load_module_state(net, snap["net"], label, "net")
    load_optimizer_state(opt, snap["opt"], label, "opt")
    return state


def sample_pairs(G, n: int, g: torch.Generator, mix_prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (n, 3, S, S) in [-1, 1], ws (n, num_ws, w_dim)): draws of ``G`` (constant noise), labels
    by its class prior; with probability ``mix_prob`` a row's layers from a random cut on come from a
    second draw (style mixing)."""
    from rig.stylegan2.generate import sample_labels

    dev = G.mapping.w_avg.device
    with torch.no_grad():
        z = torch.randn(2 * n, G.z_dim, generator=g).to(dev)
        c = sample_labels(G, 2 * n, g)
        ws = G.mapping(z, None if c is None else c.to(dev))
        a, b = ws[:n], ws[n:]
        cut = torch.randint(1, G.num_ws, (n,), generator=g).to(dev)
        mix = (torch.rand(n, generator=g) < mix_prob).to(dev)
        layer = torch.arange(G.num_ws, device=dev)[None, :]
        take_b = (mix[:, None] & (layer >= cut[:, None]))[..., None]
        ws = torch.where(take_b, b, a)
        images = G.synthesis(ws, noise_mode="const")
    return images, ws


def image_losses(G, terms: EncoderTerms, ws_hat: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reconstruction terms of ``G(ws_hat)`` against ``target`` (both (B, 3, S, S) in [-1, 1]), each a scalar."""
    out = G.synthesis(ws_hat, noise_mode="const")
    with torch.no_grad():
        f_t, l_t = terms.features_and_landmarks(target)
    f_o, l_o = terms.features_and_landmarks(out)
    side = target.shape[-1]
    return {"pixel": (out - target).pow(2).mean(),
            "ssim": (1 - ms_ssim(out, target)).mean(),
            "feature": terms.distance(f_o, f_t).mean(),
            "landmark": ((l_o - l_t) / side * 100).pow(2).sum(-1).mean()}  # (% of the side)^2


def _world_images(world_dir: str | os.PathLike | None, resolution: int, progress: bool) -> torch.Tensor | None:
    if world_dir is None:
        return None
    from rig.world.dataset import WorldDataset

    ds = WorldDataset(world_dir)
    if ds.resolution != resolution:
        raise InputError(f"{world_dir}: world images are {ds.resolution} px, the generator draws {resolution} px")
    return ds.load_images(progress=progress)


def train_inverter(network: str, out_dir: str | os.PathLike, cfg: InverterTrainConfig = InverterTrainConfig(),
                   world_dir: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
                   encoder: str = "default", architecture: InverterConfig | None = None) -> Path:
    """Train an inverter for ``network``; returns the path of ``out_dir/inverter.safetensors``."""
    from tqdm import tqdm

    from rig.stylegan2.checkpoints import load_generator
    from rig.stylegan2.identity import generator_identity

    cfg = cfg.validate()
    run = Path(out_dir)
    snap_path = run / "snapshot.pt"
    if run.exists() and any(run.iterdir()) and not resume:
        raise InputError(f"{run}: run folder is not empty; pass --resume to continue it or choose another")
    if resume and not snap_path.is_file():
        raise InputError(f"{run}: nothing to resume (no snapshot.pt)")
    G = load_generator(network).eval().requires_grad_(False)
    world = _world_images(world_dir, G.img_resolution, progress)
    if cfg.world_batch and cfg.image_steps and world is None:
        raise InputError("train inverter: the image phase needs world renders (--world DIR) or --world-batch 0")
    run.mkdir(parents=True, exist_ok=True)
    terms = EncoderTerms(encoder)
    torch.manual_seed(cfg.seed)
    arch = architecture or InverterConfig(G.num_ws, G.w_dim)
    arch = dataclasses.replace(arch, num_ws=G.num_ws, w_dim=G.w_dim)
    net = Inverter(arch)
    net.set_w_statistics(G)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    state = _State()
    cfg_text = json.dumps({"train": cfg.to_json(), "arch": dataclasses.asdict(arch), "world": str(world_dir)}, sort_keys=True)
    if resume:
        state = restore_snapshot(snap_path, net, opt, cfg_text)
    t_start = time.perf_counter() - state.elapsed_s
    last_snap = time.perf_counter()

    def snapshot() -> None:
        state.elapsed_s = time.perf_counter() - t_start
        with atomic_path(snap_path, suffix=".pt") as tmp:
            torch.save(snapshot_state(net, opt, state, cfg_text), tmp)
        plot_losses(run, PHASES)

    weights = {"latent": cfg.w_latent, "pixel": cfg.w_pixel, "ssim": cfg.w_ssim, "feature": cfg.w_feature,
               "landmark": cfg.w_landmark}
    total = cfg.latent_steps + cfg.image_steps
    for phase, n_steps in (("latent", cfg.latent_steps), ("image", cfg.image_steps)):
        if phase == "latent" and state.phase == "image" or state.phase == "done":
            continue
        if phase != state.phase:
            state.phase, state.step = phase, 0
        bar = tqdm(total=n_steps, initial=state.step, desc=f"inverter [{phase}]", unit="step",
                   disable=not progress or state.step >= n_steps)
        while state.step < n_steps:
            done = state.step + (cfg.latent_steps if phase == "image" else 0)
            # Constant learning rate, then a linear decay to 10 % over the last fifth of all steps.
            frac = max(0.0, (done / max(total, 1) - 0.8) / 0.2)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * (1 - 0.9 * frac)
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + PHASES.index(phase) * 100_000_007 + state.step)
            images, ws = sample_pairs(G, cfg.batch, g, cfg.mix_prob)
            ws_hat = net(images)
            losses = {"latent": (net.standardise(ws_hat) - net.standardise(ws)).pow(2).mean()}
            if phase == "image":
                target = images
                if world is not None and cfg.world_batch:
                    idx = torch.randint(0, len(world), (cfg.world_batch,), generator=g)
                    real = world[idx].float() / 127.5 - 1
                    target = torch.cat([images, real])
                    ws_hat = torch.cat([ws_hat, net(real)])
                for k, v in image_losses(G, terms, ws_hat, target).items():
                    losses[k] = v
            loss = sum(weights[k] * v for k, v in losses.items())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            record = {k: v.item() for k, v in losses.items()}
            end_step(run, phase, state, n_steps, record, bar, t_start)
            if time.perf_counter() - last_snap > cfg.snapshot_s:
                snapshot()
                last_snap = time.perf_counter()
        bar.close()
    state.phase, state.step = "done", 0
    snapshot()
    out = run / "inverter.safetensors"
    save_inverter(out, net, generator_identity(G),
                  training={"network": str(network), "config": cfg.to_json(), "world": str(world_dir),
                            "elapsed_s": round(state.elapsed_s, 1)})
    return out
