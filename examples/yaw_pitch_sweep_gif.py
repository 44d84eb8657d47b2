"""Turn one generated face left to right, then nod it up and down, and save the result as a GIF.

    python examples/yaw_pitch_sweep_gif.py --out sweep.gif
    python examples/yaw_pitch_sweep_gif.py --rignet runs/rignet-a/rignet.safetensors --seed 7 --out sweep.gif

``--network`` is a generator (``"default"``: the shipped one) and ``--rignet`` a RigNet trained for
it (``rig train rignet``). RigNet moves the face's W+ latent so that the generator draws the same
person with the head pose we ask for; everything else about the face should stay put.
"""

import argparse

import numpy as np
import torch
from PIL import Image

import rig
from rig.io.atomic import atomic_path
from rig.rignet.sheets import upscale


def main() -> None:
    ap = argparse.ArgumentParser(description="A yaw sweep then a pitch sweep of one seed, as an animated GIF.")
    ap.add_argument("--network", default="default", help="generator: 'default' or a checkpoint path")
    ap.add_argument("--rignet", default="default", help="RigNet: 'default' or a rignet.safetensors path")
    ap.add_argument("--out", default="yaw_pitch_sweep.gif", help="output .gif")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--frames", type=int, default=11, help="frames per sweep")
    ap.add_argument("--size", type=int, default=192, help="frame height in pixels (upsampled for viewing)")
    args = ap.parse_args()

    ed = rig.Editor.load(args.network, args.rignet)
    face = ed.latent(seed=args.seed)  # the same face `rig generate --seeds SEED` draws

    # absolute=True asks for these angles themselves (degrees, relative to the camera). The default,
    # relative, would add them to the seed's own pose, and a face already looking up could then be
    # asked for a pitch beyond what the generator ever drew (ed.sweep refuses those).
    yaws = np.linspace(-25, 25, args.frames)
    pitches = np.linspace(-12, 12, args.frames)
    faces = ed.sweep(face, "yaw", yaws, absolute=True) + ed.sweep(face, "pitch", pitches, absolute=True)

    # One batched render: (N, H, W, 3) uint8. The generator is small (64 px), so upsample for viewing.
    images = ed.render(torch.stack([f.ws for f in faces]))
    frames = [Image.fromarray(upscale(img, args.size)) for img in images]

    # atomic_path hands us a temporary file in the output's folder and os.replace()s it onto --out
    # once the block finishes, so a crash never leaves a half-written GIF behind.
    with atomic_path(args.out, suffix=".gif") as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    print(f"wrote {args.out}: {len(frames)} frames of {frames[0].width}x{frames[0].height}")


if __name__ == "__main__":
    main()
