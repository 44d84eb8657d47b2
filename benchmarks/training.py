"""Benchmark one StyleGAN2 training step of the '64' preset with and without rig's extra critics and labels.

Variants: the plain recipe (G, pixel D, lazy R1), + an 'eyes' local critic, + 'eyes' and 'mouth',
class-conditional (12 labels, as ``--cond preset`` on the default world), and conditional + 'eyes'.
Each variant trains on the same random uint8 images; the variants take turns, ``rounds`` times, so a
machine shared with other work slows them alike. Prints a Markdown table of seconds per kimg and the
ratio to the plain recipe measured in the same run (the reference).

    python benchmarks/training.py --threads 1 --steps 24 --rounds 3
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from rig.stylegan2.training.config import preset
from rig.stylegan2.training.local_d import FACE_REGIONS
from rig.stylegan2.training.loop import Trainer

CLASSES = tuple(f"class{i}" for i in range(12))


def variants() -> dict[str, dict]:
    eyes, mouth = FACE_REGIONS["eyes"], FACE_REGIONS["mouth"]
    return {
        "plain": {},
        "+ eyes critic": dict(local_critics=(eyes,)),
        "+ eyes and mouth critics": dict(local_critics=(eyes, mouth)),
        "conditional (12 labels)": dict(class_names=CLASSES),
        "conditional + eyes critic": dict(class_names=CLASSES, local_critics=(eyes,)),
    }


def time_steps(trainer: Trainer, steps: int) -> float:
    """Seconds for ``steps`` training steps (after one warm-up step)."""
    trainer._train_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer._train_step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=24, help="timed steps per variant and round (16 images each)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = (torch.rand((256, 3, 64, 64), generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    labels = torch.arange(256) % len(CLASSES)
    seconds = {name: 0.0 for name in variants()}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: Trainer(preset("64", **kw), images, tmp, progress=False,
                                  labels=labels if kw.get("class_names") else None)
                    for name, kw in variants().items()}
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                seconds[name] += time_steps(trainer, args.steps)
    kimg = args.rounds * args.steps * 16 / 1000
    print(f"| variant ({args.threads} thread(s), batch 16) | s / kimg | kimg / h | time vs plain |")
    print("|---|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s / kimg:.1f} | {3600 * kimg / s:.1f} | {s / seconds['plain']:.2f}x |")


if __name__ == "__main__":
    main()
