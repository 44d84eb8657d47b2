"""Render the pictures of the default head shown in ``docs/face_model.md``.

    python docs/make_face_model_pictures.py [--model rig/checkpoints/default_head/default_head.npz] [--out docs/img]

Writes (PNG, sRGB): ``default_head_views.png`` (front, 3/4, profile), ``default_head_identity.png``
(the first identity components at -2 / +2 standard deviations), ``default_head_expressions.png``
(all 52 expression units at coefficient 1), ``default_head_landmarks.png`` (the iBUG-68 embedding
with indices), ``default_head_albedo.png`` (skin-tone and albedo components) and
``default_head_jaw.png`` (jaw-joint rotation vs the jawOpen blendshape). Uses rig's own face model
and renderer, so it is also an end-to-end check of both.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]


def _camera(model, size: int, yaw_deg: float = 0.0, pitch_deg: float = 0.0, fov: float = 14.0, dist: float = 1.25):
    """Camera orbiting the face centre (yaw + turns towards the subject's left)."""
    from rig.render.camera import PerspectiveCamera, intrinsics_from_fov, look_at

    data = model.data
    keep = data.vertex_regions != data.region_names.index("neck") if data.vertex_regions is not None else slice(None)
    v = data.v_template[keep]
    centre = 0.5 * (v.min(0) + v.max(0))
    centre[1] -= 0.01
    a, p = math.radians(yaw_deg), math.radians(pitch_deg)
    eye = centre + dist * np.array([math.sin(a) * math.cos(p), math.sin(p), math.cos(a) * math.cos(p)])
    R, t = look_at(torch.as_tensor(eye), torch.as_tensor(centre))
    K = intrinsics_from_fov(fov, size, size).unsqueeze(0)
    return PerspectiveCamera(K, R, t, size, size)


def render(model, params, camera, albedo: np.ndarray | None = None, background=(0.32, 0.34, 0.38)) -> np.ndarray:
    """(H, W, 3) uint8 sRGB render of ``model`` posed with ``params`` (optionally another albedo texture)."""
    from rig.render.passes import RenderConfig, render_face, render_mesh, to_srgb

    config = RenderConfig(light="studio", background=background)
    with torch.no_grad():
        if albedo is None:
            passes = render_face(model, params, camera, config)
        else:
            out = model(params)
            d = model.data
            passes = render_mesh(out.vertices, model.faces, camera, config,
                                 uv_coords=torch.as_tensor(d.uv_coords, dtype=out.vertices.dtype),
                                 uv_faces=torch.as_tensor(d.uv_faces),
                                 texture=torch.as_tensor(np.clip(albedo, 0, 1), dtype=out.vertices.dtype))
    img = to_srgb(passes.rgb[0].clamp(0, 1))
    return (img.numpy() * 255 + 0.5).astype(np.uint8)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(img)
    ImageDraw.Draw(im).text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(im)


def _grid(tiles: list[np.ndarray], cols: int) -> Image.Image:
    h, w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / cols)
    canvas = np.full((rows * h, cols * w, 3), 40, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return Image.fromarray(canvas)


def _save(img: Image.Image, path: Path) -> None:
    from rig.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        img.save(tmp, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def make_pictures(model_path: Path, out_dir: Path) -> None:
    from tqdm import tqdm

    from rig.face_model.loading import load_face_model
    from rig.face_model.params import RigParams

    model = load_face_model(str(model_path), dtype=torch.float64)
    data = model.data
    zero = RigParams.for_model(model)

    def with_(**kw):
        p = zero.clone()
        for k, v in kw.items():
            getattr(p, k).copy_(torch.as_tensor(v, dtype=torch.float64).reshape(getattr(p, k).shape))
        return p

    # neutral: front, 3/4, profile
    tiles = [render(model, zero, _camera(model, 320, yaw)) for yaw in (0.0, 35.0, 90.0)]
    _save(_grid(tiles, 3), out_dir / "default_head_views.png")

    # identity sweeps
    tiles = []
    for k in tqdm(range(5), desc="identity", leave=False):
        for c in (-2.0, 2.0):
            shape = np.zeros(model.n_shape)
            shape[k] = c
            tiles.append(_label(render(model, with_(shape=shape), _camera(model, 200, 20.0)), f"shape {k} {c:+.0f} sd"))
    tiles = tiles[0::2] + tiles[1::2]  # row 1: -2 sd, row 2: +2 sd
    _save(_grid(tiles, 5), out_dir / "default_head_identity.png")

    # every expression unit at coefficient 1
    tiles = []
    names = data.expression_names
    for k in tqdm(range(model.n_expression), desc="expressions", leave=False):
        expr = np.zeros(model.n_expression)
        expr[k] = 1.0
        label = names[k]
        if names[k] == "mouthClose":  # ARKit's mouthClose only means something on an open jaw
            expr[list(names).index("jawOpen")] = 1.0
            label = "mouthClose + jawOpen"
        tiles.append(_label(render(model, with_(expression=expr), _camera(model, 150, 15.0, fov=10.0)), label))
    _save(_grid(tiles, 9), out_dir / "default_head_expressions.png")

    # jaw: the joint rotation and the sculpted jawOpen unit
    jaw_open = np.zeros(model.n_expression)
    jaw_open[list(names).index("jawOpen")] = 1.0
    tiles = [
        _label(render(model, zero, _camera(model, 240, 25.0, fov=11.0)), "neutral"),
        _label(render(model, with_(jaw_pose=[math.radians(15), 0, 0]), _camera(model, 240, 25.0, fov=11.0)), "jaw_pose 15 deg"),
        _label(render(model, with_(expression=jaw_open), _camera(model, 240, 25.0, fov=11.0)), "jawOpen = 1"),
        _label(render(model, with_(neck_pose=[0, math.radians(30), 0]), _camera(model, 240, 0.0)), "neck_pose yaw 30 deg"),
    ]
    _save(_grid(tiles, 4), out_dir / "default_head_jaw.png")

    # landmarks with indices, on a large frontal render
    size = 640
    cam = _camera(model, size, 0.0, fov=11.0)
    img = Image.fromarray(render(model, zero, cam))
    with torch.no_grad():
        lmk = model(zero).landmarks
        px = cam.project(lmk).pixels[0].numpy()
    d = ImageDraw.Draw(img)
    for i, (x, y) in enumerate(px):
        d.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=(255, 40, 40))
        d.text((x + 3, y - 11), str(i), fill=(255, 255, 120))
    _save(img, out_dir / "default_head_landmarks.png")

    # albedo: skin tone sweep and the other components
    if data.albedo_mean is not None:
        tiles = []
        names_a = data.albedo_names
        tone = list(names_a).index("skin_tone")
        for c in (-2.0, -1.0, 0.0, 1.0, 2.0):
            alb = data.albedo_mean + c * data.albedo_basis[tone]
            tiles.append(_label(render(model, zero, _camera(model, 200, 20.0), albedo=alb), f"tone {c:+.0f}"))
        for k, n in enumerate(names_a):
            if k in (tone,):
                continue
            alb = data.albedo_mean + 2.0 * data.albedo_basis[k]
            tiles.append(_label(render(model, zero, _camera(model, 200, 20.0), albedo=alb), f"{n} +2"))
        _save(_grid(tiles, 5), out_dir / "default_head_albedo.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from rig.paths import default_head_path

    parser.add_argument("--model", type=Path, default=default_head_path())
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    make_pictures(args.model, args.out)


if __name__ == "__main__":
    main()
