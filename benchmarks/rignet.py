"""Benchmark puppeteering: one edit warm (model loaded), and a 7-step sweep CLI call in a new process.

Each is compared in the same run with a reference the user knows:

    warm edit      ``Editor.latent + edit + render`` of one 64 px face (the source reading included)
                   beside ``G.synthesis`` of one image
    sweep CLI      ``rig puppet --seed 1 --sweep yaw=-30:30:7 --absolute -o sheet.png`` in a fresh process
                   (kernels already built) beside ``rig generate --seeds 0-6`` in a fresh process

Milliseconds / seconds, best of ``--repeats`` (median in brackets).

    python benchmarks/rignet.py --repeats 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

from face_model import timed  # benchmarks/face_model.py: best and median milliseconds of repeated calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rignet", default="default")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rig.rignet.editor import Editor

    ed = Editor.load("default", args.rignet)
    ws1 = ed.latent(0).ws[None]
    seeds = iter(range(10 ** 6))

    def synth():
        with torch.no_grad():
            ed.G.synthesis(ws1, noise_mode="const")

    def edit():
        face = ed.latent(next(seeds))  # a new face each time: its reading is not cached
        ed.render(ed.edit(face, yaw=20, jaw=8, expr="smile", absolute=True))

    s_best, s_med = timed(synth, args.warm_repeats)
    e_best, e_med = timed(edit, args.warm_repeats)
    rows = [("warm: G.synthesis, 1 image", s_best, s_med, "ms"),
            ("warm: latent + edit + render", e_best, e_med, "ms")]

    with tempfile.TemporaryDirectory() as tmp:
        gen = [sys.executable, "-m", "rig.cli", "generate", "--network", "default", "--seeds", "0-6",
               "--outdir", f"{tmp}/gen"]
        pup = [sys.executable, "-m", "rig.cli", "puppet", "--rignet", args.rignet, "--seed", "1", "--sweep",
               "yaw=-30:30:7", "--absolute", "-o", f"{tmp}/sheet.png"]
        counter = iter(range(10 ** 6))

        def fresh(cmd):
            def go():
                c = list(cmd)
                if "--outdir" in c:  # a new folder each time, or generate would skip its finished files
                    c[c.index("--outdir") + 1] += str(next(counter))
                subprocess.run(c, check=True, capture_output=True)
            return go

        g_best, g_med = timed(fresh(gen), args.repeats)
        p_best, p_med = timed(fresh(pup), args.repeats)
    rows += [("new process: rig generate --seeds 0-6", g_best / 1e3, g_med / 1e3, "s"),
             ("new process: rig puppet 7-step sweep", p_best / 1e3, p_med / 1e3, "s")]
    print(f"threads {args.threads}, best of {args.repeats} (CLI) / {args.warm_repeats} (warm)")
    print("| what | best | median |")
    print("|---|---|---|")
    for name, best, med, unit in rows:
        print(f"| {name} | {best:.3g} {unit} | {med:.3g} {unit} |")
    print(f"ratios: warm edit / synthesis {e_best / s_best:.1f}x; sweep CLI / generate CLI {p_best / g_best:.2f}x")


if __name__ == "__main__":
    main()
