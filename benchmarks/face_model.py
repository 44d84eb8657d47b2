"""Benchmark the face-model forward pass (vertices + joints + 68 landmarks) and the preset solve.

Models: the default head (if built) and a FLAME-sized model with random arrays (5023 vertices,
9976 triangles, 300 identity + 100 expression blendshapes, 36 pose correctives, 51 + 17 dynamic
landmarks), so the numbers stand in for a real FLAME download. Per batch size:

    fwd       ``FaceModel.forward`` under ``torch.no_grad``
    fwd+bwd   forward with every ``RigParams`` field requiring grad, a scalar loss, ``backward``
              (what a landmark / photometric tracker pays per step)

plus the time of one expression-preset solve (``smile``, uncached). Milliseconds, best of
``--repeats`` (median in brackets: the machine's cores are shared).

    python benchmarks/face_model.py --threads 1 --batches 1 8 32
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3, statistics.median(ts) * 1e3


def flame_sized_data(seed: int = 0):
    """Random arrays in FLAME's layout and sizes (not a face: only the cost matters)."""
    from rig.face_model.data import FaceModelData

    rng = np.random.default_rng(seed)
    V, F = 5023, 9976
    weights = rng.random((V, 5)) ** 4
    weights /= weights.sum(1, keepdims=True)
    regressor = rng.random((5, V)) * (rng.random((5, V)) < 0.01)
    regressor /= regressor.sum(1, keepdims=True)
    return FaceModelData(
        v_template=rng.normal(size=(V, 3)) * 0.1, faces=rng.integers(0, V, size=(F, 3)),
        shapedirs=rng.normal(size=(V, 3, 300)) * 1e-3, exprdirs=rng.normal(size=(V, 3, 100)) * 1e-3,
        posedirs=rng.normal(size=(V, 3, 36)) * 1e-3, J_regressor=regressor, parents=np.array([-1, 0, 1, 1, 1]),
        lbs_weights=weights, lmk_faces_idx=rng.integers(0, F, 51), lmk_bary_coords=np.full((51, 3), 1 / 3),
        dynamic_lmk_faces_idx=rng.integers(0, F, (79, 17)), dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3),
        name="FLAME-sized (random)")


def models(dtype):
    from rig.face_model import FaceModel, load_face_model

    out = []
    try:
        out.append(("default head", load_face_model("default", dtype=dtype)))
    except Exception as e:  # noqa: BLE001 - benchmark what is there
        print(f"(default head skipped: {e})")
    out.append(("FLAME-sized", FaceModel.from_data(flame_sized_data(), dtype)))
    return out


def run(batches, repeats, dtype) -> list[str]:
    from rig.face_model.presets import expression_preset

    rows = ["| model | dtype | batch | fwd ms | fwd+bwd ms |", "|---|---|---|---|---|"]
    for name, model in models(dtype):
        for B in batches:
            g = torch.Generator().manual_seed(0)
            params = model.zero_params(B).map(lambda t: 0.1 * torch.randn(t.shape, generator=g, dtype=t.dtype))

            def fwd():
                with torch.no_grad():
                    model(params)

            def fwd_bwd():
                leaves = params.map(lambda t: t.clone().requires_grad_())
                out = model(leaves)
                (out.vertices.square().sum() + out.landmarks.square().sum()).backward()

            f, fm = timed(fwd, repeats)
            b, bm = timed(fwd_bwd, repeats)
            rows.append(f"| {name} ({model.n_vertices} v) | {str(dtype).replace('torch.', '')} | {B} | "
                        f"{f:.1f} ({fm:.1f}) | {b:.1f} ({bm:.1f}) |")
        if name == "default head" or model.has_landmarks:
            t = time.perf_counter()
            model.cache.clear()
            expression_preset(model, "smile")
            rows.append(f"| {name}: preset solve 'smile' | | | {1e3 * (time.perf_counter() - t):.0f} | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--float64", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print("\n".join(run(args.batches, args.repeats, torch.float64 if args.float64 else torch.float32)))


if __name__ == "__main__":
    main()
