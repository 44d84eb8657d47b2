"""Benchmark rig's rasterizer: fused C++ kernel vs the PyTorch reference, in one run.

Meshes: the default head (neutral, if built) and a FLAME-sized mesh (5023 vertices, 9976
triangles: ``rig.render.primitives.flame_sized_mesh``), each framed by ``frame_head`` at 256 / 512 /
1024 px, no back-face culling (as ``render_face`` renders). Per configuration:

    raster fwd   visibility pass + barycentrics/depth (``rasterize``, no grad)
    fwd+bwd      ``rasterize`` with grad, ``interpolate`` camera-space normals, sum, ``backward``
                 (C++: fused interpolation and analytic backward in the kernel; ref: torch
                 ops and autograd throughout)
    render       ``render_mesh``: normals, albedo, SH shading, antialiasing (forward, C++ kernel)

Times are milliseconds per frame: the best wall time of ``--repeats`` runs, the median wall time,
and the best process CPU time (with ``--threads 1`` that is the code's own cost even when other jobs
share the cores; they only stretch the wall clock). Ratios use the best wall times.

    python benchmarks/render.py --threads 2 --sizes 256 512 1024
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(best wall ms, median wall ms, best process-CPU ms). With one thread the CPU time is the
    code's own cost even when other jobs share the cores (they stretch the wall clock only)."""
    fn()  # warm-up (kernel build, allocator)
    ts, cs = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    return min(ts) * 1e3, statistics.median(ts) * 1e3, min(cs) * 1e3


def meshes():
    from rig.render.primitives import flame_sized_mesh

    out = []
    try:
        from rig.face_model import load_face_model

        m = load_face_model("default", dtype=torch.float32)
        with torch.no_grad():
            v = m(m.zero_params()).vertices[0]
        out.append(("default head", v, m.faces))
    except Exception as e:  # noqa: BLE001 - benchmark what is there
        print(f"(default head skipped: {e})")
    v, f = flame_sized_mesh()
    out.append(("FLAME-sized", v.float(), f))
    return out


def run(sizes, repeats, ref_repeats, threads):
    from rig.render.camera import frame_head
    from rig.render.passes import RenderConfig, render_mesh
    from rig.render.rasterize import RasterSettings, interpolate, rasterize
    from rig.render.shading import vertex_normals

    torch.set_num_threads(threads)
    rows = []
    for name, verts, faces in meshes():
        normals = vertex_normals(verts, faces)
        for size in sizes:
            cam = frame_head(verts, size, size).to(dtype=torch.float32)
            screen = cam.project(verts).screen()
            cam_n = normals @ cam.R.transpose(1, 2)
            row = dict(mesh=name, vertices=int(verts.shape[0]), triangles=int(faces.shape[0]), size=size)
            for impl in ("cpp", "ref"):
                settings = RasterSettings(size, size, impl=impl)
                reps = repeats if impl == "cpp" else ref_repeats

                def fwd():
                    with torch.no_grad():
                        return rasterize(screen, faces, settings)

                def fwd_bwd():
                    s = screen.detach().requires_grad_(True)
                    frags = rasterize(s, faces, settings)
                    interpolate(cam_n, faces, frags, impl=impl).sum().backward()

                row[f"fwd_{impl}"] = timed(fwd, reps)
                row[f"fwdbwd_{impl}"] = timed(fwd_bwd, reps)
            row["coverage"] = float(fwd().mask.float().mean())

            def full():
                with torch.no_grad():
                    render_mesh(verts, faces, cam, RenderConfig(impl="cpp"))

            row["render_cpp"] = timed(full, max(3, repeats // 3))
            rows.append(row)
            print(_row_md(row), flush=True)
    return rows


def _row_md(r) -> str:
    def ratio(key):
        return (f"{r[key + '_ref'][0] / r[key + '_cpp'][0]:.0f}x "
                f"[{r[key + '_ref'][2] / max(r[key + '_cpp'][2], 1e-3):.0f}x]")

    def ms(key):
        best, med, cpu = r[key]
        return f"{best:.1f} ({med:.1f}) [{cpu:.1f}]"

    return (f"| {r['mesh']} | {r['size']} | {100 * r['coverage']:.0f}% | {ms('fwd_cpp')} | {ms('fwd_ref')} | "
            f"{ratio('fwd')} | {ms('fwdbwd_cpp')} | {ms('fwdbwd_ref')} | {ratio('fwdbwd')} | {ms('render_cpp')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=15, help="timed runs of the C++ variants")
    ap.add_argument("--ref-repeats", type=int, default=3, help="timed runs of the reference variants")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {args.threads} threads, load average before: {load0[0]:.1f}")
    print("| mesh | px | covered | raster fwd C++ ms | raster fwd ref ms | ratio | fwd+bwd C++ ms | fwd+bwd ref ms | "
          "ratio | full render C++ ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = run(args.sizes, args.repeats, args.ref_repeats, args.threads)
    print(f"\nms: best wall time of the runs (median wall) [best process CPU time]; "
          f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        from rig.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(dict(threads=args.threads, load_before=load0, rows=rows), indent=2))


if __name__ == "__main__":
    main()
