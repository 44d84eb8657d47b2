"""Library side of ``rig generate``: seeds (or given W+ latents) -> images on disk.

Matches NVIDIA's ``generate.py`` conventions so outputs are interchangeable: for seed ``s``,
``z = np.random.RandomState(s).randn(1, z_dim)`` (float64, cast to float32 by the mapping), PNG =
``(img * 127.5 + 128).clamp(0, 255).to(uint8)`` in NHWC, file ``seed{s:04d}.png``. Extras:
``seed{s:04d}.npy`` = the raw float32 image (C, H, W) before clamping, ``seed{s:04d}_w.npy`` = the
W+ latent (num_ws, w_dim) float32. With a ``ws_file`` the images are ``w{i:04d}.*`` instead.
Every file is written atomically and existing complete outputs are skipped (resume after Ctrl-C).
The folder's ``.rig-manifest.json`` (``rig.io.manifest``) records the settings that change what an
image holds (the network's weights, truncation, class, noise mode, precision, the --ws file's
contents): a rerun with other settings is refused unless ``overwrite``, which removes the old
outputs; the PNG bytes themselves stay exactly NVIDIA's.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.io.atomic import atomic_path
from rig.io.manifest import claim_folder
from rig.io.values import check_values
from rig.limits import LATENT_ABS

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``rig generate`` needs. ``seeds`` is ignored when ``ws_file`` is given."""

    network: str
    outdir: Path
    seeds: tuple[int, ...] = (0,)
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    class_idx: int | None = None
    noise_mode: str = "const"
    save_raw: bool = False
    save_w: bool = False
    ws_file: Path | None = None
    device: str = "cpu"
    batch: int = 1
    precision: str = "fp32"
    impl: str = "auto"
    which: str = "G_ema"
    overwrite: bool = False


@dataclass
class GenerateResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-3,7"`` -> (0, 1, 2, 3, 7). Ranges are inclusive; order and duplicates are kept as written."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise InputError(f"seed range {part!r} is empty (end before start)")
            seeds.extend(range(lo, hi + 1))
        elif re.fullmatch(r"\d+", part):
            seeds.append(int(part))
        else:
            raise InputError(f"cannot parse seeds {text!r}: expected e.g. '0-3,7'")
    if not seeds:
        raise InputError(f"no seeds in {text!r}")
    if any(s >= 2 ** 32 for s in seeds):
        raise InputError("seeds must be below 2**32 (numpy RandomState)")
    return tuple(seeds)


def seed_latent(seed: int, z_dim: int) -> np.ndarray:
    """(1, z_dim) float64 latent for ``seed``, exactly as NVIDIA's generate.py draws it."""
    return np.random.RandomState(seed).randn(1, z_dim)


def class_prior(G) -> np.ndarray:
    """(c_dim,) float64 frequencies a conditional ``G`` draws its labels by: those of its training data
    when its file stored them (``G.class_prior``, set by ``load_generator``), else uniform."""
    prior = getattr(G, "class_prior", None)
    if prior is None:
        return np.full(G.c_dim, 1.0 / G.c_dim)
    prior = np.asarray(prior, np.float64)
    return prior / prior.sum()


def seed_label(seed: int, G) -> np.ndarray:
    """(1, c_dim) one-hot label a conditional ``G`` gets for ``seed``: drawn from ``class_prior(G)``
    by the same RandomState that drew ``seed_latent`` (after the latent, so the latent is NVIDIA's)."""
    rs = np.random.RandomState(seed)
    rs.randn(1, G.z_dim)
    out = np.zeros((1, G.c_dim), np.float32)
    out[0, rs.choice(G.c_dim, p=class_prior(G))] = 1
    return out


def sample_labels(G, n: int, generator: torch.Generator) -> torch.Tensor | None:
    """(n, c_dim) one-hot labels drawn from ``class_prior(G)`` with ``generator``; None (nothing drawn)
    for an unconditional ``G``."""
    if G.c_dim == 0:
        return None
    classes = torch.multinomial(torch.from_numpy(class_prior(G)), n, replacement=True, generator=generator)
    return torch.nn.functional.one_hot(classes, G.c_dim).to(torch.float32)


def to_uint8_nhwc(img: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float image in [-1, 1] -> (N, H, W, C) uint8, NVIDIA's rounding (truncation)."""
    return (img.permute(0, 2, 3, 1).float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def _save_png(path: Path, hwc: np.ndarray) -> None:
    from PIL import Image

    arr = hwc[:, :, 0] if hwc.shape[2] == 1 else hwc
    with atomic_path(path) as tmp:
        Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB").save(tmp, format="PNG")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, arr, allow_pickle=False)


def load_ws_file(path: Path, num_ws: int, w_dim: int) -> np.ndarray:
    """(N, num_ws, w_dim) float32 from a .npy holding that or a single (num_ws, w_dim) latent."""
    from rig.errors import CheckpointError
    from rig.io.npy import read_npy

    try:  # rig's own .npy reader: header, dtype and byte count checked before allocation
        ws = read_npy(path)
    except CheckpointError as e:
        raise InputError(str(e)) from None
    if ws.ndim == 2:
        ws = ws[None]
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim) or not np.issubdtype(ws.dtype, np.floating):
        raise InputError(f"{path}: expected float W+ latents of shape (N, {num_ws}, {w_dim}) or ({num_ws}, {w_dim}), "
                         f"got {ws.dtype} {ws.shape}")
    check_values(ws, str(path), LATENT_ABS, "latent", "trained mapping networks stay within +-100")
    return ws.astype(np.float32)


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}") from None


def _precision_context(precision: str, device: torch.device):
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_OUTPUT_NAME = re.compile(r"(seed|w)\d{4,}(\.png|\.npy|_w\.npy)")


def _own_outputs(folder: Path) -> list[Path]:
    """The files in ``folder`` named as ``rig generate`` names its outputs."""
    return sorted(p for p in folder.iterdir() if _OUTPUT_NAME.fullmatch(p.name) and p.is_file())


def _settings(cfg: GenerateConfig, G, ws: np.ndarray | None) -> dict:
    """What decides an output's pixels, keyed by flag (device, batch and --impl only change speed)."""
    import hashlib

    from rig.stylegan2.identity import generator_identity

    out = {"--network": generator_identity(G), "which": cfg.which, "--noise-mode": cfg.noise_mode,
           "--precision": cfg.precision}
    if ws is not None:
        out["--ws"] = hashlib.sha256(np.ascontiguousarray(ws).tobytes()).hexdigest()[:16]
    else:
        out.update({"--trunc": cfg.truncation_psi, "--trunc-cutoff": cfg.truncation_cutoff,
                    "--class": cfg.class_idx if G.c_dim else None})
    return out


def generate_images(cfg: GenerateConfig, progress: bool = True) -> GenerateResult:
    """Render ``cfg.seeds`` (or the latents in ``cfg.ws_file``) to ``cfg.outdir``; see the module doc."""
    from tqdm import tqdm

    from rig.stylegan2.checkpoints import load_generator

    if cfg.batch < 1:
        raise InputError(f"batch must be >= 1, got {cfg.batch}")
    device = _device(cfg.device)
    result = GenerateResult()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        G = load_generator(cfg.network, which=cfg.which, device=device)
    result.notes.extend(str(w.message) for w in caught)
    outdir = Path(cfg.outdir)

    label = torch.zeros([1, G.c_dim], device=device)
    labels_by_seed = False  # a conditional network that stored its labels' frequencies draws one per seed
    if G.c_dim > 0:
        if cfg.class_idx is None and getattr(G, "class_prior", None) is not None:
            labels_by_seed = True
        elif cfg.class_idx is None:
            raise InputError(f"this network is conditional (c_dim={G.c_dim}): pass --class")
        elif not 0 <= cfg.class_idx < G.c_dim:
            raise InputError(f"--class {cfg.class_idx} out of range 0..{G.c_dim - 1}")
        else:
            label[:, cfg.class_idx] = 1
    elif cfg.class_idx is not None:
        result.notes.append("--class ignored: the network is unconditional")

    if cfg.ws_file is not None:
        ws_all = load_ws_file(Path(cfg.ws_file), G.num_ws, G.w_dim)
        jobs = [(f"w{i:04d}", None, ws_all[i]) for i in range(ws_all.shape[0])]
    else:
        jobs = [(f"seed{s:04d}", s, None) for s in cfg.seeds]

    def outputs(stem):
        paths = [outdir / f"{stem}.png"]
        if cfg.save_raw:
            paths.append(outdir / f"{stem}.npy")
        if cfg.save_w:
            paths.append(outdir / f"{stem}_w.npy")
        return paths

    claim = claim_folder(outdir, "rig generate", _settings(cfg, G, ws_all if cfg.ws_file is not None else None),
                         cfg.overwrite, _own_outputs)
    if claim.removed:
        result.notes.append(f"--overwrite: removed {len(claim.removed)} file(s) made with other settings")
    todo = []
    for job in jobs:
        if claim.resume and all(p.exists() for p in outputs(job[0])):
            result.skipped.append(job[0])
        else:
            todo.append(job)

    bar = tqdm(total=len(todo), desc="generate", unit="img", disable=not progress or not todo)
    with torch.no_grad():
        for start in range(0, len(todo), cfg.batch):
            chunk = todo[start:start + cfg.batch]
            if cfg.ws_file is not None:
                ws = torch.from_numpy(np.stack([w for _, _, w in chunk])).to(device)
            else:
                z = torch.from_numpy(np.concatenate([seed_latent(s, G.z_dim) for _, s, _ in chunk])).to(device)
                c = (torch.from_numpy(np.concatenate([seed_label(s, G) for _, s, _ in chunk])).to(device)
                     if labels_by_seed else label.repeat(len(chunk), 1))
                ws = G.mapping(z, c, truncation_psi=cfg.truncation_psi,
                               truncation_cutoff=cfg.truncation_cutoff, impl=cfg.impl)
            with _precision_context(cfg.precision, device):
                img = G.synthesis(ws, noise_mode=cfg.noise_mode, impl=cfg.impl)
            img = img.float()
            u8 = to_uint8_nhwc(img)
            for k, (stem, _, _) in enumerate(chunk):
                paths = outputs(stem)
                _save_png(paths[0], u8[k])
                if cfg.save_raw:
                    _save_npy(outdir / f"{stem}.npy", img[k].cpu().numpy().astype(np.float32))
                if cfg.save_w:
                    _save_npy(outdir / f"{stem}_w.npy", ws[k].float().cpu().numpy())
                result.written.extend(paths)
            bar.update(len(chunk))
    bar.close()
    return result
