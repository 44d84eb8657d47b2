"""One face smiling harder and harder: the "smile" preset at strengths 0, 0.25, ..., 1.25, as a strip.

    python examples/smile_strength_strip.py --out smile.png
    python examples/smile_strength_strip.py --rignet runs/rignet-a/rignet.safetensors --seed 11 --out smile.png

Strength S asks for S times the change in the labeler's reading that the world's smile preset
makes (``rig.rignet.calibration``), on top of the face's own expression: 0 is the face as drawn,
1 a full smile, beyond 1 an exaggerated one. The same as ``ed.edit(face, expr=f"smile:{s}")``.
"""

import argparse

import numpy as np
import torch

import rig
from rig.render.images import save_png
from rig.rignet.edit import EditRequest
from rig.rignet.sheets import grid, upscale

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)
SMILE = ("mouthSmileLeft", "mouthSmileRight")


def main() -> None:
    ap = argparse.ArgumentParser(description="A labelled strip of one seed at increasing smile strengths.")
    ap.add_argument("--network", default="default", help="generator: 'default' or a checkpoint path")
    ap.add_argument("--rignet", default="default", help="RigNet: 'default' or a rignet.safetensors path")
    ap.add_argument("--out", default="smile_strength.png", help="output .png")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--size", type=int, default=192, help="cell height in pixels (upsampled for viewing)")
    args = ap.parse_args()

    ed = rig.Editor.load(args.network, args.rignet)
    face = ed.latent(seed=args.seed)

    # "expr:smile" sweeps the preset's strength; all six edits go through RigNet in one batch.
    faces = ed.sweep(face, "expr:smile", STRENGTHS)
    images = ed.render(torch.stack([f.ws for f in faces]))
    labels = [f"smile:{s:g}" for s in STRENGTHS]
    save_png(args.out, grid([[upscale(img, args.size) for img in images]], col_labels=labels))
    print(f"wrote {args.out}: {len(faces)} cells, {' '.join(labels)}")

    # What we asked for (the target) against what the labeler reads off each generated image:
    # the mean of the left and right mouthSmile units, 0 (none) .. 1 (full).
    smile = [ed.space.index(n) for n in SMILE]
    print(f"{'strength':>8s} {'target':>7s} {'read':>7s}")
    for s, edited in zip(STRENGTHS, faces):
        target, _ = ed.targets(face, EditRequest(expr=(("smile", s),)))
        print(f"{s:8.2f} {np.mean(target[smile]):7.3f} {np.mean(ed.controls_of(edited)[smile]):7.3f}")


if __name__ == "__main__":
    main()
