"""``rig label``: a labelled latent set, W+ latents of a generator with the rig controls read off ``G(w)``.

Sample ``i`` of a set drawn with seed ``K`` is a pure function of (K, i): ``z`` (and, for a
conditional network, its class by the stored class frequencies) from ``np.random.default_rng([K, i])``,
and with probability ``mix_prob`` a second latent for the layers from a random crossover on (style
mixing, so the parameter reader learns to read W+ latents whose layers differ, as RigNet's edits make).

Layout of a label folder::

    DIR/labels.json          format, network identity, labeler, control names, seed, n, shard size
    DIR/shard-00000.npz      index (n,), cls (n,) int64 (-1 unconditional), ws (n, num_ws, w_dim) float32,
                             controls (n, P) float32 physical units, readable (n,) bool

Shards are written atomically and last-in-first-done, so an interrupted run resumes where it stopped.
Unreadable samples keep their row (``readable`` False, controls 0) so they are counted, never used.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.io.atomic import atomic_path, write_text_atomic

LABELS_FORMAT = "rig.label_set"
INFO_FILE = "labels.json"


@dataclass(frozen=True)
class LabelConfig:
    """What ``rig label`` draws. ``truncation_psi`` 1 samples the generator's full distribution."""

    network: str
    out_dir: Path
    n: int
    labeler: str = "encoder"
    seed: int = 0
    shard_size: int = 1024
    batch: int = 64
    mix_prob: float = 0.5
    truncation_psi: float = 1.0
    device: str = "cpu"

    def validate(self) -> "LabelConfig":
        if self.n < 1 or self.shard_size < 1 or self.batch < 1:
            raise InputError("rig label: --n, --shard-size and --batch must be positive")
        if not 0 <= self.mix_prob <= 1:
            raise InputError(f"rig label: --mix-prob {self.mix_prob} is not in [0, 1]")
        if not math.isfinite(self.truncation_psi):
            raise InputError(f"rig label: --trunc {self.truncation_psi} is not a finite number")
        return self


def _shard_file(root: Path, s: int) -> Path:
    return root / f"shard-{s:05d}.npz"


@torch.no_grad()
def sample_ws(G, seed: int, indices: np.ndarray, mix_prob: float = 0.5, truncation_psi: float = 1.0
              ) -> tuple[torch.Tensor, np.ndarray]:
    """W+ latents (n, num_ws, w_dim) float32 and classes (n,) (-1 for an unconditional G) of samples ``indices``."""
    from rig.stylegan2.generate import class_prior

    prior = class_prior(G) if G.c_dim else None
    zs, cs, z2s, c2s, cuts = [], [], [], [], []
    for i in indices:
        rng = np.random.default_rng([int(seed), int(i)])
        zs.append(rng.standard_normal(G.z_dim))
        cs.append(int(rng.choice(G.c_dim, p=prior)) if G.c_dim else -1)
        mixed = rng.uniform() < mix_prob
        z2s.append(rng.standard_normal(G.z_dim))
        c2s.append(int(rng.choice(G.c_dim, p=prior)) if G.c_dim else -1)
        cuts.append(int(rng.integers(1, G.num_ws)) if mixed else G.num_ws)
    device = G.mapping.w_avg.device

    def labels(c):
        if not G.c_dim:
            return None
        return torch.nn.functional.one_hot(torch.as_tensor(c), G.c_dim).float().to(device)

    ws = G.mapping(torch.as_tensor(np.stack(zs), dtype=torch.float32, device=device), labels(cs),
                   truncation_psi=truncation_psi)
    ws2 = G.mapping(torch.as_tensor(np.stack(z2s), dtype=torch.float32, device=device), labels(c2s),
                    truncation_psi=truncation_psi)
    layer = torch.arange(G.num_ws, device=device)[None, :]
    take2 = layer >= torch.as_tensor(cuts, device=device)[:, None]
    return torch.where(take2[..., None], ws2, ws), np.asarray(cs, np.int64)


def label_latents(cfg: LabelConfig, progress: bool = True) -> dict:
    """Write (or resume) the label set ``cfg`` describes; returns its summary (counts, images/s)."""
    from tqdm import tqdm

    from rig.rignet.labelers import make_labeler
    from rig.stylegan2.checkpoints import load_generator
    from rig.stylegan2.identity import generator_identity

    cfg = cfg.validate()
    G = load_generator(cfg.network, device=cfg.device)
    labeler = make_labeler(cfg.labeler)
    if hasattr(labeler, "to"):
        labeler.to(cfg.device)
    out = Path(cfg.out_dir)
    info = {"format": LABELS_FORMAT, "network": str(cfg.network), "generator_identity": generator_identity(G),
            "labeler": cfg.labeler, "control_names": list(labeler.names), "seed": cfg.seed, "n": cfg.n,
            "shard_size": cfg.shard_size, "mix_prob": cfg.mix_prob, "truncation_psi": cfg.truncation_psi,
            "num_ws": G.num_ws, "w_dim": G.w_dim}
    if (out / INFO_FILE).exists():
        old = read_label_info(out)
        for key in ("generator_identity", "labeler", "control_names", "seed", "n", "shard_size", "mix_prob", "truncation_psi"):
            if old.get(key) != info[key]:
                raise InputError(f"{out}: holds a label set with a different {key} ({old.get(key)!r}, "
                                 f"asked {info[key]!r}); choose another folder")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / INFO_FILE, json.dumps(info, indent=1))
    n_shards = math.ceil(cfg.n / cfg.shard_size)
    todo = [s for s in range(n_shards) if not _shard_file(out, s).is_file()]
    total = sum(min(cfg.shard_size, cfg.n - s * cfg.shard_size) for s in todo)
    t0, done = time.perf_counter(), 0
    with tqdm(total=total, unit="img", desc=f"label -> {out.name}", disable=not progress or not todo) as bar:
        for s in todo:
            idx = np.arange(s * cfg.shard_size, min(cfg.n, (s + 1) * cfg.shard_size))
            ws_all, cls_all, ctl_all, ok_all = [], [], [], []
            for b in range(0, len(idx), cfg.batch):
                chunk = idx[b:b + cfg.batch]
                ws, cls = sample_ws(G, cfg.seed, chunk, cfg.mix_prob, cfg.truncation_psi)
                with torch.no_grad():
                    images = G.synthesis(ws, noise_mode="const")
                controls, ok = labeler.read(images)
                ws_all.append(ws.float().cpu().numpy())
                cls_all.append(cls)
                ctl_all.append(controls.astype(np.float32))
                ok_all.append(ok)
                bar.update(len(chunk))
                done += len(chunk)
                bar.set_postfix(img_s=f"{done / max(time.perf_counter() - t0, 1e-9):.0f}")
            with atomic_path(_shard_file(out, s), suffix=".npz") as tmp:
                np.savez(tmp, index=idx, cls=np.concatenate(cls_all), ws=np.concatenate(ws_all),
                         controls=np.concatenate(ctl_all), readable=np.concatenate(ok_all))
    labels = LabelSet.load(out)
    return {"n": len(labels), "readable": int(labels.readable.sum()), "labelled_now": done,
            "images_per_s": done / max(time.perf_counter() - t0, 1e-9) if done else None}


def read_label_info(root: str | os.PathLike) -> dict:
    path = Path(root) / INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{root}: not a label set (no {INFO_FILE}; make one with rig label)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict) or info.get("format") != LABELS_FORMAT:
        raise InputError(f"{path}: not a rig label set description")
    return info


@dataclass
class LabelSet:
    """A loaded label set: ws (N, num_ws, w_dim), controls (N, P), readable (N,), cls (N,), info."""

    ws: torch.Tensor
    controls: torch.Tensor
    readable: np.ndarray
    cls: np.ndarray
    info: dict

    def __len__(self) -> int:
        return int(self.ws.shape[0])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.info["control_names"])

    @property
    def unmixed(self) -> torch.Tensor:
        """(N,) bool: samples whose W+ layers are all one w (no style mixing)."""
        return (self.ws[:, 0] - self.ws[:, -1]).abs().amax(1) == 0

    @classmethod
    def load(cls, root: str | os.PathLike, readable_only: bool = False) -> "LabelSet":
        root = Path(root)
        info = read_label_info(root)
        arrays = {k: [] for k in ("ws", "controls", "readable", "cls")}
        n_shards = math.ceil(int(info["n"]) / int(info["shard_size"]))
        for s in range(n_shards):
            f = _shard_file(root, s)
            if not f.is_file():
                continue
            try:
                with np.load(f, allow_pickle=False) as z:
                    for k in arrays:
                        arrays[k].append(z[k])
            except (ValueError, OSError, KeyError, EOFError) as e:
                raise InputError(f"{f}: not a readable label shard ({e})") from None
        if not arrays["ws"]:
            raise InputError(f"{root}: the label set has no finished shard yet")
        ws = np.concatenate(arrays["ws"])
        if ws.ndim != 3 or ws.shape[1:] != (info["num_ws"], info["w_dim"]):
            raise InputError(f"{root}: latents of shape {ws.shape[1:]}, labels.json says ({info['num_ws']}, {info['w_dim']})")
        out = cls(torch.from_numpy(ws), torch.from_numpy(np.concatenate(arrays["controls"]).astype(np.float32)),
                  np.concatenate(arrays["readable"]).astype(bool), np.concatenate(arrays["cls"]), info)
        if readable_only:
            keep = np.flatnonzero(out.readable)
            out = cls(out.ws[keep], out.controls[keep], out.readable[keep], out.cls[keep], info)
        return out


def summary_lines(summary: dict, out_dir) -> list[str]:
    lines = [f"{out_dir}: {summary['n']} samples, {summary['readable']} readable "
             f"({summary['n'] - summary['readable']} unreadable, skipped)"]
    if summary.get("images_per_s"):
        lines.append(f"labelled {summary['labelled_now']} now at {summary['images_per_s']:.0f} images/s")
    return lines

