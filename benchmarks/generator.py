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
import os
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


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """fp32 GEMM rate (wall, CPU-time-per-thread based) of an n x n matmul: the machine's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    wall, cpu = time_forward(lambda: a @ b, repeats)
    return 2 * n ** 3 / wall / 1e9, 2 * n ** 3 / (cpu / threads) / 1e9


def time_forward(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, best process CPU seconds) over ``repeats`` runs after one warm-up.

    On a machine shared with other jobs the wall time mostly measures the contention; CPU time
    divided by the thread count estimates the wall time the run would take with the cores to itself.
    """
    fn()  # warm-up (kernel build / oneDNN primitive caches)
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best_wall, best_cpu


def run(resolutions, batches, repeats, threads, with_bf16=True, seed=0):
    from rig.stylegan2.networks import Generator

    torch.set_num_threads(threads)
    peak, peak_cpu = matmul_peak_gflops(threads)
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
            for (impl, bf16), (wall, cpu) in times.items():
                err = (outs[(impl, bf16)] - ref).abs()
                per_image = wall / batch
                cpu_per_image = cpu / threads / batch
                nv = NVIDIA_S_PER_IMAGE.get(res)
                rows.append(dict(resolution=res, batch=batch, impl=impl, precision="bf16" if bf16 else "fp32",
                                 s_per_image=per_image, cpu_s_per_image=cpu_per_image, gflop_per_image=gflop,
                                 gflops=gflop / per_image, gflops_cpu=gflop / cpu_per_image,
                                 peak_fraction=gflop / per_image / peak,
                                 speedup_vs_nvidia=nv / per_image if nv else None,
                                 speedup_vs_nvidia_cpu=nv / cpu_per_image if nv else None,
                                 max_abs_err=float(err.max()), mean_abs_err=float(err.mean()),
                                 load_average=os.getloadavg()[0]))
                print(_row_md(rows[-1]), flush=True)
    return dict(matmul_peak_gflops=peak, matmul_peak_gflops_cpu=peak_cpu, threads=threads, rows=rows)


def _row_md(r) -> str:
    vs = f"{r['speedup_vs_nvidia']:.2f}x" if r["speedup_vs_nvidia"] else "-"
    vs_cpu = f"{r['speedup_vs_nvidia_cpu']:.2f}x" if r["speedup_vs_nvidia_cpu"] else "-"
    return (f"| {r['resolution']} | {r['batch']} | {r['impl']} | {r['precision']} | {r['s_per_image']:.3f} | "
            f"{r['cpu_s_per_image']:.3f} | {r['gflop_per_image']:.1f} | {r['gflops']:.0f} / {r['gflops_cpu']:.0f} | "
            f"{100 * r['peak_fraction']:.0f}% | {vs} / {vs_cpu} | {r['max_abs_err']:.1e} / {r['mean_abs_err']:.1e} | "
            f"{r['load_average']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per variant (best is reported)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args()
    print("| px | batch | impl | precision | wall s/image | CPU s/image / threads | GFLOP/image | GFLOP/s wall / CPU | "
          "of matmul peak (wall) | vs NVIDIA wall / CPU | max / mean abs err vs ref | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = run(args.resolutions, args.batches, args.repeats, args.threads, with_bf16=not args.no_bf16)
    print(f"\nfp32 matmul peak (2048^2, {args.threads} threads): {out['matmul_peak_gflops']:.0f} GFLOP/s wall, "
          f"{out['matmul_peak_gflops_cpu']:.0f} GFLOP/s from CPU time")
    if args.json:
        from rig.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
