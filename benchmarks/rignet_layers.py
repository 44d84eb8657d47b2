"""Which W+ layers carry which rig control? The measurement behind ``RigNetConfig.layers``.

For each control group a linear direction in W is fit by ridge regression on a label set (the
encoder's readings of unmixed samples). The direction, scaled to move the group's first control by
one standard deviation, is then added to ONE W+ layer at a time; the encoder reads the images and
the table gives, per layer, how far the group's own control moved (in its std) and how far the
other groups' controls drifted (mean |change| in std). Also the linear baseline: the whole
direction on all layers.

    python benchmarks/rignet_layers.py --labels runs/labels-default --n 96
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", required=True)
    ap.add_argument("--network", default="default")
    ap.add_argument("--n", type=int, default=96, help="latents per probe")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from rig.rignet.evaluate import ridge_direction
    from rig.rignet.labelers import EncoderLabeler
    from rig.rignet.labels import LabelSet
    from rig.rignet.train import control_space_for
    from rig.stylegan2.checkpoints import load_generator

    G = load_generator(args.network)
    L = LabelSet.load(args.labels, readable_only=True)
    space = control_space_for(L)
    lab = EncoderLabeler()
    unmixed = L.unmixed
    w = L.ws[unmixed, 0].double().numpy()
    q = space.normalise(L.controls[unmixed].double()).numpy()
    probes = {"pose (yaw)": "yaw", "pose (pitch)": "pitch", "jaw": "jaw_x", "expression (mouthSmileLeft)": "mouthSmileLeft",
              "eyes (eyeBlinkLeft)": "eyeBlinkLeft"}
    groups = space.groups_present()
    test = L.ws[unmixed][-args.n:]  # the ridge fit saw these too; 96 of ~12k barely matter

    def read(ws):
        with torch.no_grad():
            out = []
            for i in range(0, len(ws), 48):
                r, _ = lab.readings(G.synthesis(ws[i:i + 48], noise_mode="const"))
                out.append(space.normalise(r.double()))
            return torch.cat(out).numpy()

    base = read(test)
    print(f"{len(w)} unmixed labelled latents; probing {len(test)} held-out ones; change in std of each control")
    header = "| probe | " + " | ".join(f"layer {l}" for l in range(G.num_ws)) + " | all layers |"
    print(header)
    print("|" + "---|" * (G.num_ws + 2))
    for label, name in probes.items():
        k = space.index(name)
        d, _ = ridge_direction(w, q[:, k])
        d = d / (d @ d)  # a step along d that the ridge model predicts moves control k by one std
        own_group = [i for i in space.group_indices(next(g for g in groups if k in space.group_indices(g)))]
        others = [i for g in groups for i in space.group_indices(g) if i not in own_group]
        cells = []
        for layer in list(range(G.num_ws)) + ["all"]:
            ws = test.clone()
            dt = torch.as_tensor(d, dtype=ws.dtype)
            if layer == "all":
                ws += dt
            else:
                ws[:, layer] += dt
            delta = read(ws) - base
            cells.append(f"{np.mean(delta[:, k]):+.2f} / {np.mean(np.abs(delta[:, others])):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("cells: mean change of the probed control (std) / mean |change| of the other groups' controls (std)")


if __name__ == "__main__":
    main()
