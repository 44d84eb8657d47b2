"""Turn render passes into 8-bit images and files: per-pass PNGs, a contact sheet, raw arrays, the camera.

File layout written by ``write_render_outputs(passes, camera, "out.png", ...)``:
    out.png               the single pass, or a contact sheet of all requested passes (left to right)
    out_<pass>.png        one PNG per pass when several are requested
    out_<pass>.npy        with ``save_npy``: raw arrays; ``out_depth.npy`` float32 metres with +inf
                          background, ``out_mask.npy`` bool (always written with ``save_npy``)
    out.camera.json       the camera (K, R, t, width, height; OpenCV convention), always
A batch of B > 1 frames writes ``out_0000.png``, ``out_0000_depth.npy``, ... per frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.io.atomic import atomic_path
from rig.render.passes import RenderPasses, to_srgb

PASS_NAMES = ("rgb", "albedo", "normal", "depth", "mask", "uv", "region", "landmarks")

# 8-bit colours of region labels in ``REGION_NAMES`` order (skin, lips, eyes, brows, teeth, hair, neck).
REGION_PALETTE = np.array([[230, 180, 150], [200, 60, 70], [240, 240, 240], [90, 60, 30], [250, 250, 180],
                           [60, 40, 20], [150, 190, 230], [120, 200, 120], [200, 120, 220]], dtype=np.uint8)


def parse_pass_names(spec: str) -> list[str]:
    """'rgb,normal,depth' -> ['rgb', 'normal', 'depth']; raises ``InputError`` on unknown names."""
    names = [p.strip() for p in spec.split(",") if p.strip()]
    bad = [n for n in names if n not in PASS_NAMES]
    if bad or not names:
        raise InputError(f"unknown render pass(es) {', '.join(bad) or '(none)'}; choose from {', '.join(PASS_NAMES)}")
    return list(dict.fromkeys(names))


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x.detach().clamp(0, 1).cpu().double().numpy() * 255.0 + 0.5).astype(np.uint8)


def pass_image(passes: RenderPasses, name: str, index: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 visualisation of one pass of frame ``index``.

    rgb / albedo: sRGB-encoded; normal: camera-space n mapped to (0.5 + n_x/2, 0.5 - n_y/2, 0.5 - n_z/2)
    (facing the camera = blue, up = green, image right = red); depth: near white to far dark over
    the foreground range, background black; mask: white on black; uv: (u, v, 0); region: palette;
    landmarks: the rgb pass with visible landmarks green and occluded ones red.
    """
    mask = passes.mask[index]
    if name in ("rgb", "albedo"):
        return _u8(to_srgb(getattr(passes, name)[index]))
    if name == "normal":
        n = passes.normal[index]
        img = torch.stack([0.5 + 0.5 * n[..., 0], 0.5 - 0.5 * n[..., 1], 0.5 - 0.5 * n[..., 2]], dim=-1)
        return _u8(torch.where(mask[..., None], img, torch.zeros_like(img)))
    if name == "depth":
        d = passes.depth[index].detach()
        g = torch.zeros_like(d)
        if bool(mask.any()):
            lo, hi = d[mask].min(), d[mask].max()
            g = torch.where(mask, 1.0 - 0.8 * (d - lo) / (hi - lo).clamp_min(1e-12), g)
        return _u8(g[..., None].expand(-1, -1, 3))
    if name == "mask":
        return _u8(mask.to(torch.float64)[..., None].expand(-1, -1, 3))
    if name == "uv":
        uv = passes.uv[index]
        img = torch.cat([uv, torch.zeros_like(uv[..., :1])], dim=-1)
        return _u8(torch.where(mask[..., None], img, torch.zeros_like(img)))
    if name == "region":
        r = passes.region[index].cpu().numpy()
        img = np.zeros(r.shape + (3,), np.uint8)
        img[r >= 0] = REGION_PALETTE[r[r >= 0] % len(REGION_PALETTE)]
        return img
    if name == "landmarks":
        from PIL import Image, ImageDraw

        base = Image.fromarray(pass_image(passes, "rgb", index))
        draw = ImageDraw.Draw(base)
        rad = max(1.5, base.width / 256)
        for (u, v), vis in zip(passes.landmarks[index].detach().cpu().tolist(),
                               passes.landmarks_visible[index].cpu().tolist()):
            colour = (40, 230, 40) if vis else (230, 40, 40)
            draw.ellipse([u - rad, v - rad, u + rad, v + rad], fill=colour)
        return np.asarray(base)
    raise InputError(f"unknown render pass {name!r}; choose from {', '.join(PASS_NAMES)}")


def contact_sheet(images: list[np.ndarray], labels: list[str] | None = None) -> np.ndarray:
    """Images side by side (same height), each labelled in its top-left corner."""
    from PIL import Image, ImageDraw

    sheet = Image.fromarray(np.concatenate(images, axis=1))
    if labels:
        draw = ImageDraw.Draw(sheet)
        x = 0
        for img, label in zip(images, labels):
            draw.text((x + 4, 2), label, fill=(255, 255, 0))
            x += img.shape[1]
    return np.asarray(sheet)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array, allow_pickle=False)
    return Path(path)


def _raw(passes: RenderPasses, name: str, index: int) -> dict[str, np.ndarray]:
    if name == "landmarks":
        return {"landmarks": passes.landmarks[index].detach().cpu().numpy().astype(np.float32),
                "landmarks_visible": passes.landmarks_visible[index].cpu().numpy()}
    if name == "mask":
        return {"mask": passes.mask[index].cpu().numpy()}
    if name == "region":
        return {"region": passes.region[index].cpu().numpy().astype(np.int16)}
    return {name: getattr(passes, name)[index].detach().cpu().numpy().astype(np.float32)}


def write_render_outputs(passes: RenderPasses, camera, output: str | os.PathLike, pass_names: list[str],
                         save_arrays: bool = False) -> list[Path]:
    """Write the files described in the module docstring; returns the paths written."""
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise InputError(f"{output}: the render output must be a .png file")
    B = passes.mask.shape[0]
    written: list[Path] = []
    for b in range(B):
        stem = output.with_suffix("") if B == 1 else output.with_name(f"{output.stem}_{b:04d}")
        images = [pass_image(passes, n, b) for n in pass_names]
        if len(images) == 1:
            written.append(save_png(stem.with_suffix(".png"), images[0]))
        else:
            for n, img in zip(pass_names, images):
                written.append(save_png(stem.parent / f"{stem.name}_{n}.png", img))
            written.append(save_png(stem.with_suffix(".png"), contact_sheet(images, pass_names)))
        if save_arrays:
            names = list(dict.fromkeys(list(pass_names) + ["depth", "mask"]))
            for n in names:
                for key, arr in _raw(passes, n, b).items():
                    written.append(save_npy(stem.parent / f"{stem.name}_{key}.npy", arr))
    cam_path = output.parent / f"{output.stem}.camera.json"
    camera.save_json(cam_path)
    written.append(cam_path)
    return written
