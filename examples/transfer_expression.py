"""Give seed B the expression of seed A: same person and head pose as B, A's smile, eyes and jaw.

    python examples/transfer_expression.py --out transfer.png
    python examples/transfer_expression.py --rignet runs/rignet-a/rignet.safetensors --a 22 --b 16 --out transfer.png

This uses the lower-level half of ``rig.Editor``: read a face's controls (the labeler's reading of the
generated image), build a target control vector by hand and let RigNet move the latent towards it.
``ed.edit(face, expr="smile")`` is the same machinery with the target built from a named preset.
"""

import argparse
import math

import numpy as np
import torch

import rig
from rig.render.images import save_png
from rig.rignet.sheets import upscale

# A few controls to print: two expression units (0..1 blendshape weights) and the jaw opening.
SHOWN = ("mouthSmileLeft", "eyeBlinkLeft", "jaw_x")


def main() -> None:
    ap = argparse.ArgumentParser(description="Move seed B to seed A's expression; save A | B | B with A's expression.")
    ap.add_argument("--network", default="default", help="generator: 'default' or a checkpoint path")
    ap.add_argument("--rignet", default="default", help="RigNet: 'default' or a rignet.safetensors path")
    ap.add_argument("--out", default="transfer_expression.png", help="output .png")
    ap.add_argument("--a", type=int, default=8, help="seed whose expression is copied")
    ap.add_argument("--b", type=int, default=16, help="seed that receives it")
    ap.add_argument("--size", type=int, default=192, help="cell height in pixels (upsampled for viewing)")
    args = ap.parse_args()

    ed = rig.Editor.load(args.network, args.rignet)
    face_a, face_b = ed.latent(seed=args.a), ed.latent(seed=args.b)

    # (P,) control vectors in physical units (expression weights, radians), names in ed.space.names.
    controls_a, controls_b = ed.controls_of(face_a), ed.controls_of(face_b)

    # Start from B's own reading, so B's head pose is kept, and copy over A's expression, eyes and jaw.
    # group_indices leaves out the controls the generator never varies (it cannot steer those).
    moved = np.concatenate([ed.space.group_indices(g) for g in ("expression", "eyes", "jaw")])
    target = controls_b.copy()
    target[moved] = controls_a[moved]

    # RigNet works on batches: (1, L, w_dim) latent, (1, P) source reading and (1, P) target.
    ws = ed.apply(face_b.ws[None], controls_b[None], target[None])
    face_b_as_a = ed.face_from_ws(ws[0], {"made_by": "examples/transfer_expression.py", "a": args.a, "b": args.b})

    faces = {f"A (seed {args.a})": face_a, f"B (seed {args.b})": face_b, "B with A's expression": face_b_as_a}
    images = ed.render(torch.stack([f.ws for f in faces.values()]))
    save_png(args.out, np.concatenate([upscale(img, args.size) for img in images], axis=1))
    print(f"wrote {args.out}: left to right {' | '.join(faces)}")

    # Read the three images back: the third should be close to A on these controls, not to B.
    print(f"{'':24s}" + "".join(f"{n:>16s}" for n in SHOWN))
    for label, face in faces.items():
        c = ed.controls_of(face)
        values = [c[ed.space.index(n)] for n in SHOWN]
        cells = [f"{math.degrees(v):13.1f} deg" if n == "jaw_x" else f"{v:16.3f}" for n, v in zip(SHOWN, values)]
        print(f"{label:24s}" + "".join(cells))


if __name__ == "__main__":
    main()
