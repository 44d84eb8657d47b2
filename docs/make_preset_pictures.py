"""Render every expression preset on a face model, with the landmark targets drawn over it.

    python docs/make_preset_pictures.py [--face-model default] [--out docs/img/presets_default_head.png]

Each tile: the preset solved by ``rig.face_model.expression_preset`` and rendered with rig's own
renderer (slightly turned so depth reads), the achieved landmarks (green dots) and the preset's
landmark targets (red crosses: neutral + IOD x displacement, for the landmarks the preset moves).
Green on red means the solve reached the target; the caption gives the jaw angle and the three
largest expression coefficients.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]


def _tile(model, name: str, size: int, yaw_deg: float) -> Image.Image:
    from rig.face_model import expression_preset
    from rig.face_model.lbs import axis_angle_to_matrix
    from rig.face_model.presets import preset_target
    from rig.render.camera import frame_head
    from rig.render.passes import RenderConfig, render_face, to_srgb

    neutral_params = model.zero_params()
    with torch.no_grad():
        neutral = model(neutral_params)
    e, jaw = expression_preset(model, name)
    params = model.zero_params()
    params.expression[0], params.jaw_pose[0] = e, jaw
    params.global_pose[0, 1] = math.radians(yaw_deg)
    neutral_params.global_pose[0, 1] = math.radians(yaw_deg)

    # Frame the face (not the neck) from the neutral mesh so every tile shares one camera.
    lmk = neutral.landmarks[0]
    centre = 0.5 * (lmk.min(0).values + lmk.max(0).values)
    camera = frame_head(lmk, size, size, fov_deg=12.0, margin=1.35, center=centre)
    with torch.no_grad():
        passes = render_face(model, params, camera, RenderConfig(light="studio", background=(0.3, 0.32, 0.36)))
        # Targets live in the head frame; pose them like the head (yaw about the root joint).
        L0 = model(neutral_params).landmarks[0]
        target = preset_target(name, neutral.landmarks[0].double().numpy())
        iod = float(torch.linalg.norm(lmk[45] - lmk[36]))
        R = axis_angle_to_matrix(neutral_params.global_pose)[0]
        goal = L0 + (torch.as_tensor(target.displacement * iod, dtype=L0.dtype) @ R.T)
        goal_px = camera.project(goal[None]).pixels[0]
    img = Image.fromarray((to_srgb(passes.rgb[0].clamp(0, 1)).numpy() * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    moved = np.abs(target.displacement).max(1) > 0
    for (u, v), is_moved in zip(goal_px.tolist(), moved):
        if is_moved:
            draw.line([(u - 3, v - 3), (u + 3, v + 3)], fill=(255, 60, 60))
            draw.line([(u - 3, v + 3), (u + 3, v - 3)], fill=(255, 60, 60))
    for u, v in passes.landmarks[0].tolist():
        draw.ellipse([u - 1.5, v - 1.5, u + 1.5, v + 1.5], fill=(60, 255, 90))
    top = np.argsort(-np.abs(e.numpy()))[:3]
    names = model.expression_names or tuple(f"e{i}" for i in range(model.n_expression))
    caption = f"{name}  jaw {math.degrees(float(jaw[0])):.0f} deg"
    details = ", ".join(f"{names[i]} {float(e[i]):.2f}" for i in top if abs(float(e[i])) > 1e-3)
    draw.text((4, 3), caption, fill=(255, 255, 255))
    draw.text((4, size - 14), details[:60], fill=(230, 230, 230))
    return img


def make_picture(face_model: str, out: Path, size: int = 256, yaw_deg: float = 12.0, cols: int = 4) -> None:
    from tqdm import tqdm

    from rig.face_model import load_face_model, preset_names
    from rig.io.atomic import atomic_path

    model = load_face_model(face_model, dtype=torch.float64)
    tiles = [_tile(model, name, size, yaw_deg) for name in tqdm(preset_names(), desc="presets")]
    rows = math.ceil(len(tiles) / cols)
    canvas = Image.new("RGB", (cols * size, rows * size), (40, 40, 40))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas.paste(tile, (c * size, r * size))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        canvas.save(tmp, optimize=True)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--face-model", default="default")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "presets_default_head.png")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    make_picture(args.face_model, args.out, args.size)


if __name__ == "__main__":
    main()
