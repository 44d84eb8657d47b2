"""Contact sheets for puppeteering: grids of generated faces, each optionally beside its rig render."""

from __future__ import annotations

import numpy as np


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> height ``size`` (width in proportion), Lanczos; for viewing only."""
    from PIL import Image

    h, w = image.shape[:2]
    if size == h:
        return image
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * size / h)), size), Image.LANCZOS))


def pair(gan: np.ndarray, rig: np.ndarray | None) -> np.ndarray:
    """The rig render (if any) left of the GAN image, both (S, S, 3) uint8."""
    return gan if rig is None else np.concatenate([rig, gan], 1)


def grid(cells: list[list[np.ndarray]], col_labels: list[str] | None = None, row_labels: list[str] | None = None,
         gap: int = 2, label_height: int = 14, label_width: int = 0) -> np.ndarray:
    """Rows of equally sized (h, w, 3) uint8 cells on a dark background, with text labels."""
    from PIL import Image, ImageDraw

    h, w = cells[0][0].shape[:2]
    rows, cols = len(cells), max(len(r) for r in cells)
    top = label_height if col_labels else 0
    left = label_width if row_labels else 0
    sheet = np.full((top + rows * (h + gap) + gap, left + cols * (w + gap) + gap, 3), 24, np.uint8)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            y, x = top + gap + i * (h + gap), left + gap + j * (w + gap)
            sheet[y:y + h, x:x + w] = cell
    img = Image.fromarray(sheet)
    draw = ImageDraw.Draw(img)
    for j, text in enumerate(col_labels or []):
        draw.text((left + gap + j * (w + gap) + 2, 1), text, fill=(235, 235, 120))
    for i, text in enumerate(row_labels or []):
        draw.text((2, top + gap + i * (h + gap) + h // 2 - 5), text, fill=(235, 235, 120))
    return np.asarray(img)


def write_eval_sheets(ed, out_dir, seeds=range(1000, 1006), display: int = 128) -> list:
    """``rignet_yaw.png`` (seeds x yaw -30..30) and ``rignet_presets.png`` (seeds x presets), each cell
    the rig render of the target beside the GAN image, upsampled to ``display`` px for viewing."""
    from pathlib import Path

    import torch

    from rig.render.images import save_png
    from rig.rignet.edit import EditRequest
    from rig.rignet.preview import ControlRenderer

    out = Path(out_dir)
    renderer = ControlRenderer(ed.space, ed.calibration, ed.G.img_resolution)
    presets = sorted(k for k in (ed.calibration or {}).get("presets", {}) if k != "neutral")
    plans = {"rignet_yaw.png": ([f"yaw {v:+g}" for v in (-30, -20, -10, 0, 10, 20, 30)],
                                [EditRequest(yaw=float(v), absolute=True) for v in (-30, -20, -10, 0, 10, 20, 30)]),
             "rignet_presets.png": (["source"] + presets,
                                    [EditRequest()] + [EditRequest(expr=((p, 1.0),)) for p in presets])}
    written = []
    for name, (labels, reqs) in plans.items():
        rows = []
        for s in seeds:
            face = ed.latent(int(s))
            edited = ed.edit_many(face, reqs)
            targets = np.stack([ed.targets(face, r)[0] for r in reqs])
            gan = ed.render(torch.stack([e.ws for e in edited]))
            rig = renderer.render(targets)
            rows.append([upscale(pair(g, r), display) for g, r in zip(gan, rig)])
        written.append(save_png(out / name, grid(rows, labels, [f"seed {s}" for s in seeds], label_width=56)))
    return written
