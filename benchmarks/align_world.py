"""Where dlib's landmark crop sits against the default world's own crop: the measurement behind
``rig align`` using NVIDIA's FFHQ recipe unchanged for the default world (``rig.invert.align``).

World renders (256 px, so dlib's points are sharp) are aligned by construction: their crop is the
image itself. For each, the FFHQ frame placed from dlib's 68 points is
compared with the image's own frame, expressed in the dlib frame's units (centre offset along its
half-axes, half-side ratio, rotation); medians near 0 / 1 mean no correction is needed. The last row
is the crop error of ``rig align`` on these renders (dlib's own spread).

    python benchmarks/align_world.py --n 200
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=3, help="world seed (not the training worlds 0 / 1)")
    args = ap.parse_args()
    torch.set_num_threads(2)

    from tqdm import tqdm

    from rig.face_model import load_face_model
    from rig.invert.align import detect_faces, landmark_frame
    from rig.world.config import WorldConfig
    from rig.world.priors import draw_params
    from rig.world.render import WorldRenderer

    model = load_face_model("default", dtype=torch.float32)
    cfg = WorldConfig(resolution=args.size)
    renderer = WorldRenderer(model, cfg)
    rows = [draw_params(cfg, args.seed, i, model.data.n_shape, tuple(model.expression_names)) for i in range(args.n)]
    stats, residual = [], []
    s = args.size
    own_c, own_x = np.array([s / 2, s / 2]), np.array([s / 2, 0.0])
    for start in tqdm(range(0, args.n, 16), desc="render + dlib", unit="batch"):
        images, _, _ = renderer.render(rows[start:start + 16])
        for img in images:
            faces = detect_faces(img)
            if not faces:
                continue
            c, x, y = (v[0].numpy() for v in landmark_frame(faces[0].landmarks))
            h2 = x @ x
            d = own_c - c
            stats.append([d @ x / h2, d @ y / h2, np.linalg.norm(own_x) / np.sqrt(h2),
                          np.degrees(np.arctan2(x[1], x[0]))])
            residual.append(max(np.linalg.norm(c - own_c), np.linalg.norm(x - own_x)) / s)
    st = np.array(stats)
    print(f"found {len(st)} of {args.n} world renders ({args.size} px, world seed {args.seed})")
    print("| quantity | median | 10th pct | 90th pct |")
    print("|---|---|---|---|")
    for k, name in enumerate(("centre offset along x (half-sides)", "centre offset along y (half-sides)",
                              "world half-side / dlib half-side", "dlib frame rotation (deg; world: 0)")):
        print(f"| {name} | {np.median(st[:, k]):.4f} | {np.percentile(st[:, k], 10):.4f} | {np.percentile(st[:, k], 90):.4f} |")
    r = np.array(residual)
    print(f"| crop error of rig align (fraction of the side) | {np.median(r):.4f} | "
          f"{np.percentile(r, 10):.4f} | {np.percentile(r, 90):.4f} |")


if __name__ == "__main__":
    main()
