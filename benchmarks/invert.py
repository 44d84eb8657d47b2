"""Benchmark inversion of one 64 px crop, each stage beside ``G.synthesis`` of one image in the same run.

    inverter only   the inverter's forward pass on one crop (the issue's bar: <= 0.1 s)
    optimised       inverter + ``--steps`` W+ optimisation steps on one crop (bar: <= 30 s)
    tuned           ``--tune`` pivotal-tuning steps on top (no bar; reported)
    rig invert      the CLI on one crop in a fresh process (imports, model loading, face file)

Milliseconds / seconds, best of ``--repeats`` (median in brackets); targets are held-out world renders.

    python benchmarks/invert.py --repeats 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from face_model import timed  # benchmarks/face_model.py: best and median milliseconds of repeated calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--tune", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--inverter", default="default")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from rig.invert.inverter import load_inverter
    from rig.invert.losses import EncoderTerms
    from rig.invert.optimize import OptimizeConfig
    from rig.invert.pipeline import InvertConfig, invert_crops, to_float
    from rig.invert.tune import TuneConfig
    from rig.stylegan2.checkpoints import load_generator
    from rig.world.dataset import WorldDataset
    from rig.world.encoder_run import eval_world_dir

    G = load_generator("default")
    net = load_inverter(args.inverter).net
    terms = EncoderTerms()
    ds = WorldDataset(eval_world_dir(64, 50, seed=0, progress=False))
    crops = iter([ds.image(i) for i in range(50)] * 4)
    ws1 = G.mapping.w_avg[None, None].repeat(1, G.num_ws, 1)

    def synth():
        with torch.no_grad():
            G.synthesis(ws1, noise_mode="const")

    def inverter_only():
        with torch.no_grad():
            net(to_float(next(crops)[None]))

    s_best, s_med = timed(synth, 20)
    i_best, i_med = timed(inverter_only, 20)
    rows = [("G.synthesis, 1 image", s_best, s_med, "ms"), ("inverter only, 1 crop", i_best, i_med, "ms")]
    for label, cfg in ((f"inverter + {args.steps} optimisation steps", InvertConfig(OptimizeConfig(steps=args.steps))),
                       (f"... + {args.tune} tuning steps", InvertConfig(OptimizeConfig(steps=args.steps),
                                                                        TuneConfig(steps=args.tune)))):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            invert_crops(G, net, terms, next(crops)[None], cfg)
            times.append(time.perf_counter() - t0)
        rows.append((label + ", 1 crop", min(times), float(np.median(times)), "s"))
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        Image.fromarray(next(crops)).save(f"{tmp}/crop.png")
        cmd = [sys.executable, "-m", "rig.cli", "invert", f"{tmp}/crop.png", "--inverter", args.inverter,
               "--steps", str(args.steps), "--quiet"]
        times = []
        for k in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd + ["-o", f"{tmp}/face{k}.npz"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        rows.append((f"rig invert --steps {args.steps}, fresh process", min(times), float(np.median(times)), "s"))
    print(f"threads {args.threads}, best of {args.repeats} (median)")
    print("| stage | best | median | x G.synthesis (best) |")
    print("|---|---|---|---|")
    for name, best, med, unit in rows:
        ms = best * (1000 if unit == "s" else 1)
        print(f"| {name} | {best:.3g} {unit} | {med:.3g} {unit} | {ms / s_best:.0f} |")


if __name__ == "__main__":
    main()
