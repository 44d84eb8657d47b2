"""``rig invert``: a photo or an aligned crop -> a face file (W+ of the generator), optionally with a tuned G.

Steps: read the image (``rig.invert.align.read_photo``); decide whether it already is an aligned crop
(``target_crop``: a square at the generator's resolution is one; another square is one when dlib's
landmark frame sits on the image's own within ``CROP_FIT``; anything else is aligned first); the
inverter's one-pass guess (``rig.invert.inverter``); W+ optimisation (``rig.invert.optimize``);
optional pivotal tuning (``rig.invert.tune``). ``Inversion`` holds every stage's latent and image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.invert.align import Alignment, align_photo, crop_fit, read_photo
from rig.invert.optimize import OptimizeConfig, optimize_latents
from rig.invert.tune import TuneConfig, tune_generator

CROP_FIT = 0.08  # largest landmark-frame deviation (fraction of the side) of an image taken as a crop
ALIGN_MODES = ("auto", "align", "aligned")


@dataclass(frozen=True)
class InvertConfig:
    """optimize: W+ optimisation (steps 0: the inverter's guess); tune: pivotal tuning (steps 0: none);
    align: 'auto' (tell a crop from a photo), 'align' (always align) or 'aligned' (the image is a crop);
    face_index: which face of a photo (largest first; None: the largest)."""

    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    tune: TuneConfig = field(default_factory=lambda: TuneConfig(steps=0))
    align: str = "auto"
    face_index: int | None = None

    def validate(self) -> "InvertConfig":
        if self.align not in ALIGN_MODES:
            raise InputError(f"align mode {self.align!r}: choose from {', '.join(ALIGN_MODES)}")
        if self.face_index is not None and not 0 <= self.face_index < 1000:
            raise InputError(f"--face-index {self.face_index}: choose 0..999")
        self.optimize.validate()
        self.tune.validate()
        return self


@dataclass
class Inversion:
    """One inverted image. Latents (num_ws, w_dim); images (S, S, 3) uint8."""

    target: np.ndarray
    ws_inverter: torch.Tensor
    ws: torch.Tensor
    image_inverter: np.ndarray
    image: np.ndarray
    alignment: Alignment | None
    history: list[dict]
    tuned: torch.nn.Module | None = None
    image_tuned: np.ndarray | None = None
    tune_history: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _resize_square(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS if image.shape[0] > size else Image.BICUBIC))


def target_crop(image: np.ndarray, resolution: int, cfg: InvertConfig, source: str) -> tuple[np.ndarray, Alignment | None, list[str]]:
    """(crop (R, R, 3) uint8, its alignment in the photo or None for a crop given as such, notices)."""
    h, w = image.shape[:2]
    square = h == w
    if cfg.align == "aligned":
        if not square:
            raise InputError(f"{source}: --aligned needs a square crop, the image is {w}x{h}")
        return _resize_square(image, resolution), None, []
    if cfg.align == "auto" and square:
        if h == resolution:
            return image, None, [f"{source}: {w}x{h}, the generator's size: taken as an aligned crop (--align to align it)"]
        fit = crop_fit(image)
        if fit is not None and fit < CROP_FIT:
            return (_resize_square(image, resolution), None,
                    [f"{source}: a square whose face sits where an aligned crop has it (off by {fit:.1%}): "
                     "taken as a crop (--align to align it)"])
    crop, al, notices = align_photo(image, resolution, cfg.face_index, source=source)
    return crop, al, notices


def to_float(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [-1, 1]."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 127.5 - 1


def invert_crops(G, inverter, terms, crops: np.ndarray, cfg: InvertConfig, progress: bool = False,
                 alignments: list | None = None) -> list[Inversion]:
    """Invert (B, S, S, 3) uint8 aligned crops: the inverter's guess, then optimisation, then tuning
    (one tuned copy of ``G`` per crop)."""
    from rig.stylegan2.generate import to_uint8_nhwc

    cfg = cfg.validate()
    dev = G.mapping.w_avg.device
    target = to_float(crops).to(dev)
    with torch.no_grad():
        ws0 = inverter(target)
        img0 = to_uint8_nhwc(G.synthesis(ws0, noise_mode="const"))
    net = inverter
    ws, history = optimize_latents(G, terms, target, ws0, net.w_mean, net.w_std, cfg.optimize, progress=progress)
    with torch.no_grad():
        img = to_uint8_nhwc(G.synthesis(ws, noise_mode="const"))
    out = []
    for i in range(len(crops)):
        inv = Inversion(crops[i], ws0[i].cpu(), ws[i].cpu(), img0[i], img[i],
                        alignments[i] if alignments else None, history)
        if cfg.tune.steps > 0:
            tuned, th = tune_generator(G, terms, target[i:i + 1], ws[i:i + 1], cfg.tune, progress=progress)
            with torch.no_grad():
                inv.image_tuned = to_uint8_nhwc(tuned.synthesis(ws[i:i + 1], noise_mode="const"))[0]
            inv.tuned, inv.tune_history = tuned, th
        out.append(inv)
    return out


def invert_file(G, inverter, terms, path: str | os.PathLike, cfg: InvertConfig, progress: bool = False) -> Inversion:
    """Invert one image file (photo or crop) for ``G``."""
    cfg = cfg.validate()
    photo = read_photo(path)
    crop, al, notices = target_crop(photo, G.img_resolution, cfg, str(path))
    inv = invert_crops(G, inverter, terms, crop[None], cfg, progress=progress, alignments=[al])[0]
    inv.notices = notices + inv.notices
    return inv


def summary(inv: Inversion) -> dict:
    """Numbers for provenance and the command's report: PSNR of each stage against the target (dB)."""
    from rig.invert.losses import psnr

    t = to_float(inv.target[None])
    rec = {"psnr_inverter": round(float(psnr(to_float(inv.image_inverter[None]), t)), 2),
           "psnr_optimised": round(float(psnr(to_float(inv.image[None]), t)), 2)}
    if inv.image_tuned is not None:
        rec["psnr_tuned"] = round(float(psnr(to_float(inv.image_tuned[None]), t)), 2)
    if inv.history:
        rec["final_loss"] = {k: round(v, 5) for k, v in inv.history[-1].items()}
    return rec


def tuned_name(face_path: Path) -> str:
    """File name of the tuned generator saved beside a face file: ``NAME.generator.safetensors``."""
    return f"{face_path.stem}.generator.safetensors"
