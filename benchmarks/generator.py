"""Benchmark rig's StyleGAN2 generator on CPU: fused fast path vs reference path (and bf16).

FFHQ-size configs (z = w = 512, 8 mapping layers, channel_base 32768, channel_max 512) at 256 / 512
/ 1024 px with random weights, batch 1 and 8. Reports seconds per image, GFLOP/s (FLOPs counted
analytically, see ``generator_flops``), the fraction of the machine's fp32 matmul peak (measured in
the same run), the ratio against NVIDIA's reference code (0.88 / 1.50 / 2.79 s per image at batch 1,
fp32, 2 threads, measured on this machine kind), and the fast / bf16 outputs' error against the
reference path. Prints a Markdown table; ``--json`` also writes the raw numbers.

    python benchmarks/generator.py --threads 2 --resolutions 256 512 1024 --batches 1 8
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

NVIDIA_S_PER_IMAGE = {256: 0.88, 512: 1.50, 1024: 2.79}
NVIDIA_GFLOP = {256: 90.7, 512: 120.4, 1024: 150.8}


def ffhq_config(resolution: int):
    from rig.stylegan2.config import GeneratorConfig, MappingConfig, SynthesisConfig

    return GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                           mapping=MappingConfig(num_layers=8),
                           synthesis=SynthesisConfig(channel_base=32768, channel_max=512))


def generator_flops(cfg) -> float:
    """Floating-point operations (multiply and add counted separately) of one image.

    Modulated 3x3 convs at their output resolution; up-sampling convs as NVIDIA computes them, a
    stride-2 transposed convolution over the *input* pixels followed by the 4x4 FIR on the output;
    1x1 toRGB convs, the RGB up-sampling FIR, and the mapping network's fully-connected layers.
    """
    s = cfg.synthesis
    k2 = s.kernel_size ** 2
    taps = len(s.resample_filter) ** 2
    flops = 0.0
    dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping.num_layers
    flops += sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))
    log2 = int(math.log2(cfg.img_resolution))
    for res in (2 ** i for i in range(2, log2 + 1)):
        cout = s.channels(res)
        if res == 4:
            flops += 2 * cout * cout * k2 * res * res
        else:
            cin = s.channels(res // 2)
            flops += 2 * cin * cout * k2 * (res // 2) ** 2  # transposed conv
            flops += 2 * taps * cout * res * res  # FIR after it
            flops += 2 * cout * cout * k2 * res * res  # conv1
            flops += 2 * taps * cfg.img_channels * res * res  # RGB up-sampling
        flops += 2 * cout * cfg.img_channels * res * res  # toRGB
    return flops


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def time_forward(fn, repeats: int) -> float:
    fn()  # warm-up (kernel build / oneDNN primitive caches)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(resolutions, batches, repeats, threads, with_bf16=True, seed=0):
    from rig.stylegan2.networks import Generator

    torch.set_num_threads(threads)
    peak = matmul_peak_gflops()
    rows = []
    for res in resolutions:
        cfg = ffhq_config(res)
        torch.manual_seed(seed)
        G = Generator(cfg).eval().requires_grad_(False)
        gflop = generator_flops(cfg) / 1e9
        for batch in batches:
            z = torch.randn(batch, cfg.z_dim, generator=torch.Generator().manual_seed(seed + 1))
            with torch.no_grad():
                ws = G.mapping(z, None, truncation_psi=0.7)
                outs = {}

                def fwd(impl, bf16=False):
                    if bf16:
                        with torch.autocast("cpu", dtype=torch.bfloat16):
                            outs[(impl, bf16)] = G.synthesis(ws, noise_mode="const", impl=impl).float()
                    else:
                        outs[(impl, bf16)] = G.synthesis(ws, noise_mode="const", impl=impl)

                variants = [("fast", False), ("ref", False)] + ([("fast", True)] if with_bf16 else [])
                times = {v: time_forward(lambda v=v: fwd(*v), repeats) for v in variants}
            ref = outs[("ref", False)]
            for (impl, bf16), t in times.items():
                err = (outs[(impl, bf16)] - ref).abs()
                per_image = t / batch
                rows.append(dict(resolution=res, batch=batch, impl=impl, precision="bf16" if bf16 else "fp32",
                                 s_per_image=per_image, gflop_per_image=gflop, gflops=gflop / per_image,
                                 peak_fraction=gflop / per_image / peak,
                                 speedup_vs_nvidia=NVIDIA_S_PER_IMAGE[res] / per_image if res in NVIDIA_S_PER_IMAGE else None,
                                 max_abs_err=float(err.max()), mean_abs_err=float(err.mean())))
                print(_row_md(rows[-1]), flush=True)
    return dict(matmul_peak_gflops=peak, threads=threads, rows=rows)


def _row_md(r) -> str:
    vs = f"{r['speedup_vs_nvidia']:.2f}x" if r["speedup_vs_nvidia"] else "-"
    return (f"| {r['resolution']} | {r['batch']} | {r['impl']} | {r['precision']} | {r['s_per_image']:.3f} | "
            f"{r['gflop_per_image']:.1f} | {r['gflops']:.0f} | {100 * r['peak_fraction']:.0f}% | {vs} | "
            f"{r['max_abs_err']:.1e} / {r['mean_abs_err']:.1e} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per variant (best is reported)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args()
    print("| px | batch | impl | precision | s/image | GFLOP/image | GFLOP/s | of matmul peak | vs NVIDIA | "
          "max / mean abs err vs ref |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    out = run(args.resolutions, args.batches, args.repeats, args.threads, with_bf16=not args.no_bf16)
    print(f"\nfp32 matmul peak (2048^2, {args.threads} threads): {out['matmul_peak_gflops']:.0f} GFLOP/s")
    if args.json:
        from rig.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
