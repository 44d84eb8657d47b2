"""Rasterization: a visibility pass (triangle id per pixel) and differentiable interpolation.

The split follows pytorch3d / nvdiffrast: ``rasterize`` finds, per pixel, the nearest triangle
(no gradients: ids are discrete), then recomputes that triangle's barycentrics and depth with
torch ops from the screen-space vertices, so gradients flow from anything ``interpolate``-d back to
the vertex positions. Silhouette-edge gradients (which the per-pixel ids cannot give) come from
``rig.render.antialias``.

Two implementations of the visibility pass, selected with ``impl``:
    "ref"  pure PyTorch (``rasterize_ref``, the specification),
    "cpp"  the fused, multi-threaded C++ kernel (``rig/render/csrc/rasterize.cpp``, JIT-built),
    "auto" the C++ kernel when it builds and the tensors are on the CPU, else the reference.
Both give identical triangle ids, and barycentrics / depth equal to float64 rounding.

Background convention: ``pix_to_face == -1``, ``bary == 0``, ``depth == +inf``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from rig.errors import InputError, ShapeError
from rig.render.rasterize_ref import rasterize_visibility_ref

# Per image side: 8192 x 8192 already needs ~2 GB of float64 barycentrics per image; a forged
# or mistyped size (1e5 x 1e5: ~80 GB) is refused before anything is allocated.
MAX_IMAGE_SIDE = 8192
IMPLS = ("auto", "cpp", "ref")


@dataclass(frozen=True)
class RasterSettings:
    """Settings of the visibility pass.

    height, width: image size in pixels.
    perspective: True for pinhole cameras (perspective-correct barycentrics, depth interpolated as
        1/z); False for orthographic / weak perspective (affine barycentrics, linear depth).
    cull_backfaces: drop triangles facing away from the camera (winding: counter-clockwise seen
        from outside, as in ``FaceModelData.faces``).
    near: metres; triangles with any vertex nearer than this are rejected whole (not clipped).
    impl: "auto" | "cpp" | "ref".
    """

    height: int
    width: int
    perspective: bool = True
    cull_backfaces: bool = False
    near: float = 1e-4
    impl: str = "auto"

    def __post_init__(self) -> None:
        # Checked once per settings record, not per pixel: cheap enough for training loops.
        for name in ("height", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise InputError(f"RasterSettings: {name} must be an integer number of pixels, got {v!r}")
            if not 1 <= v <= MAX_IMAGE_SIDE:
                raise InputError(f"RasterSettings: {name} must be within 1..{MAX_IMAGE_SIDE} pixels, got {v}")
            object.__setattr__(self, name, int(v))  # numpy / torch integers become plain ints
        for name in ("perspective", "cull_backfaces"):
            v = getattr(self, name)
            if not isinstance(v, (bool, np.bool_, numbers.Integral)) or v not in (0, 1):
                raise InputError(f"RasterSettings: {name} must be True or False, got {v!r}")
            object.__setattr__(self, name, bool(v))
        if isinstance(self.near, bool) or not isinstance(self.near, numbers.Real) or not math.isfinite(self.near):
            raise InputError(f"RasterSettings: near must be a finite number of metres, got {self.near!r}")
        if self.impl not in IMPLS:
            raise InputError(f"rasterize: impl must be 'auto', 'cpp' or 'ref', got {self.impl!r}")


class Fragments(NamedTuple):
    """Output of ``rasterize``; B images of H x W pixels.

    pix_to_face: (B, H, W) int64 triangle index, -1 for background.
    bary: (B, H, W, 3) perspective-correct barycentrics (dtype of the vertices), 0 in background;
        differentiable w.r.t. the screen vertices when those require grad.
    depth: (B, H, W) camera z in metres (dtype of the vertices), +inf in background; differentiable
        like ``bary``.
    """

    pix_to_face: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool, True where a triangle covers the pixel centre."""
        return self.pix_to_face >= 0


def _check_inputs(screen: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if screen.ndim == 2:
        screen = screen.unsqueeze(0)
    if screen.ndim != 3 or screen.shape[-1] != 3:
        raise ShapeError(f"rasterize: screen vertices must be (B, V, 3) (u, v, depth), got {tuple(screen.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ShapeError(f"rasterize: faces must be (F, 3), got {tuple(faces.shape)}")
    if faces.dtype not in (torch.int32, torch.int64):
        raise ShapeError(f"rasterize: faces must be integer, got {faces.dtype}")
    faces = faces.to(device=screen.device, dtype=torch.int64)
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= screen.shape[1]):
        raise InputError(f"rasterize: face indices outside 0..{screen.shape[1] - 1}")
    return screen, faces


def _visibility(screen: torch.Tensor, faces: torch.Tensor, settings: RasterSettings):
    """(pix_to_face, bary, depth, kernel module or None if the reference ran)."""
    impl = settings.impl
    if impl != "ref" and screen.device.type == "cpu":
        from rig.render import rasterize_cpp

        ext = rasterize_cpp.load_kernel(required=(impl == "cpp"))
        if ext is not None:
            return (*rasterize_cpp.rasterize_visibility_cpp(ext, screen, faces, settings), ext)
    elif impl == "cpp":
        raise InputError(f"rasterize: impl='cpp' needs CPU tensors, got device {screen.device}")
    return (*rasterize_visibility_ref(screen, faces, settings.height, settings.width, settings.perspective,
                                      settings.cull_backfaces, settings.near), None)


def rasterize_visibility(screen: torch.Tensor, faces: torch.Tensor, settings: RasterSettings):
    """The non-differentiable visibility pass: (pix_to_face, bary, depth), see ``rasterize``.

    bary / depth are float64, except from the C++ kernel for float32 input: float32 (the same
    float64 results, rounded once)."""
    screen, faces = _check_inputs(screen, faces)
    return _visibility(screen, faces, settings)[:3]


class _KernelBarycentrics(torch.autograd.Function):
    """Barycentrics / depth from the C++ visibility pass, with the C++ analytic backward
    (``rasterize_backward``): the same derivative as ``barycentrics_from_faces`` (tested), without
    its chain of per-pixel torch ops. First-order only."""

    @staticmethod
    def forward(ctx, screen, faces, pix_to_face, bary64, depth64, perspective, ext):
        ctx.save_for_backward(screen, faces, pix_to_face, bary64, depth64)
        ctx.perspective, ctx.ext = perspective, ext
        return bary64.to(screen.dtype), depth64.to(screen.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_bary, grad_depth):
        screen, faces, pix_to_face, bary64, depth64 = ctx.saved_tensors
        B = pix_to_face.shape[0]
        if grad_bary is None:
            grad_bary = torch.zeros_like(bary64)
        if grad_depth is None:
            grad_depth = torch.zeros_like(depth64)
        grad = ctx.ext.rasterize_backward(screen.detach().expand(B, -1, -1), faces, pix_to_face, bary64, depth64,
                                          grad_bary, grad_depth, ctx.perspective)
        grad = grad.to(screen.dtype)
        if screen.shape[0] != B:
            grad = grad.sum(dim=0, keepdim=True)
        return grad, None, None, None, None, None, None


def covered_pixels(pix_to_face: torch.Tensor):
    """Flat indices of covered pixels. pix_to_face (B, H, W) -> (lin (N,) into B*H*W, face ids (N,),
    image index (N,)). 1-D ``index_select`` / ``index_copy`` on these is much faster on the CPU
    (forward and backward) than multi-dimensional advanced indexing."""
    B, H, W = pix_to_face.shape
    flat = pix_to_face.reshape(-1)
    lin = torch.nonzero(flat >= 0).squeeze(1)
    fid = flat.index_select(0, lin)
    bidx = torch.div(lin, H * W, rounding_mode="floor")
    return lin, fid, bidx


def barycentrics_from_faces(screen: torch.Tensor, faces: torch.Tensor, pix_to_face: torch.Tensor,
                            perspective: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Recompute barycentrics and depth of given triangle ids with differentiable torch ops.

    screen: (B, V, 3) (u, v, depth) vertices; faces (F, 3); pix_to_face (B, H, W) int64.
    Returns bary (B, H, W, 3) and depth (B, H, W) in ``screen``'s dtype; background pixels get
    bary 0 and depth +inf with no gradient. Same formulas as ``rasterize_ref``.
    """
    B, H, W = pix_to_face.shape
    V = screen.shape[1]
    lin, fid, bidx = covered_pixels(pix_to_face)
    pidx = lin - bidx * (H * W)
    vid = faces.index_select(0, fid)  # (N, 3)
    flat_screen = screen.expand(B, -1, -1).reshape(B * V, 3)
    v = flat_screen.index_select(0, (bidx[:, None] * V + vid).reshape(-1)).view(-1, 3, 3)
    # unbind (backward: one stack) rather than many selects (backward: one full-size zeros each)
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (c.unbind(-1) for c in v.unbind(1))
    px = (pidx % W).to(screen.dtype) + 0.5
    py = torch.div(pidx, W, rounding_mode="floor").to(screen.dtype) + 0.5
    ia = 1.0 / ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
    b0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * ia
    b1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * ia
    b2 = ((x0 - px) * (y1 - py) - (x1 - px) * (y0 - py)) * ia
    if perspective:
        q0, q1, q2 = b0 * (1.0 / z0), b1 * (1.0 / z1), b2 * (1.0 / z2)
        depth = 1.0 / (q0 + q1 + q2)
        bary = torch.stack([q0 * depth, q1 * depth, q2 * depth], dim=1)
    else:
        depth = b0 * z0 + b1 * z1 + b2 * z2
        bary = torch.stack([b0, b1, b2], dim=1)
    bary_full = torch.zeros((B * H * W, 3), dtype=screen.dtype, device=screen.device).index_copy(0, lin, bary)
    depth_full = torch.full((B * H * W,), float("inf"), dtype=screen.dtype, device=screen.device).index_copy(
        0, lin, depth)
    return bary_full.view(B, H, W, 3), depth_full.view(B, H, W)


def rasterize(screen: torch.Tensor, faces: torch.Tensor, settings: RasterSettings) -> Fragments:
    """Rasterize triangles given in screen space.

    screen: (B, V, 3) or (V, 3) float vertices as (u, v, depth): pixel coordinates (u right, v down,
        pixel centres at half-integers) and camera depth in metres, e.g. ``camera.project(x).screen()``.
    faces: (F, 3) int vertex indices.
    Returns ``Fragments`` (see there). With grad enabled and ``screen.requires_grad``, bary and
    depth carry gradients w.r.t. ``screen``: through the C++ kernel's analytic backward when the
    kernel ran (first-order only), else recomputed with torch ops (``barycentrics_from_faces``,
    differentiable to any order).
    """
    screen, faces = _check_inputs(screen, faces)
    pix_to_face, bary, depth, ext = _visibility(screen, faces, settings)
    if torch.is_grad_enabled() and screen.requires_grad:
        if ext is not None and hasattr(ext, "rasterize_backward"):
            bary, depth = _KernelBarycentrics.apply(screen, faces, pix_to_face, bary, depth, settings.perspective, ext)
        else:
            bary, depth = barycentrics_from_faces(screen, faces, pix_to_face, settings.perspective)
    else:
        bary, depth = bary.to(screen.dtype), depth.to(screen.dtype)
    return Fragments(pix_to_face, bary, depth)


class _KernelInterpolate(torch.autograd.Function):
    """``interpolate`` in the C++ kernel (forward and backward fused); first-order only."""

    @staticmethod
    def forward(ctx, attributes, faces, pix_to_face, bary, ext):
        ctx.save_for_backward(attributes, faces, pix_to_face, bary)
        ctx.ext = ext
        return ext.interpolate_forward(attributes, faces, pix_to_face, bary)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        attributes, faces, pix_to_face, bary = ctx.saved_tensors
        need_attr, need_bary = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        grad_attr, grad_bary = ctx.ext.interpolate_backward(grad_out, attributes, faces, pix_to_face, bary,
                                                            need_attr, need_bary)
        return (grad_attr if need_attr else None, None, None,
                grad_bary.to(bary.dtype) if need_bary else None, None)


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments, impl: str = "auto") -> torch.Tensor:
    """Interpolate per-vertex attributes at every pixel with the fragments' barycentrics.

    attributes: (B, N, C) or (N, C) values per attribute vertex (positions, normals, uv, colours).
    faces: (F, 3) indices into ``attributes`` with the same triangle order as the rasterized faces
        (e.g. ``uv_faces`` for ``uv_coords``).
    impl: "auto" (the fused C++ kernel for float CPU tensors when it is built, first-order
        gradients), "cpp", or "ref" (torch ops, differentiable to any order).
    Returns (B, H, W, C), 0 in background. Differentiable w.r.t. ``attributes`` and (through
    ``fragments.bary``) the vertex positions.
    """
    if attributes.ndim == 2:
        attributes = attributes.unsqueeze(0)
    if attributes.ndim != 3:
        raise ShapeError(f"interpolate: attributes must be (B, N, C) or (N, C), got {tuple(attributes.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ShapeError(f"interpolate: faces must be (F, 3), got {tuple(faces.shape)}")
    B, H, W = fragments.pix_to_face.shape
    if attributes.shape[0] not in (1, B):
        raise ShapeError(f"interpolate: attribute batch {attributes.shape[0]} vs fragments batch {B}")
    faces = faces.to(device=attributes.device, dtype=torch.int64)
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= attributes.shape[1]):
        raise InputError(f"interpolate: face indices outside 0..{attributes.shape[1] - 1} of the attributes")
    if impl not in ("auto", "cpp", "ref"):
        raise InputError(f"interpolate: impl must be 'auto', 'cpp' or 'ref', got {impl!r}")
    if (impl != "ref" and attributes.device.type == "cpu" and fragments.pix_to_face.device.type == "cpu"
            and attributes.dtype in (torch.float32, torch.float64)):
        from rig.render import rasterize_cpp

        ext = rasterize_cpp.load_kernel(required=(impl == "cpp"))
        if ext is not None and hasattr(ext, "interpolate_forward"):
            return _KernelInterpolate.apply(attributes, faces, fragments.pix_to_face,
                                            fragments.bary.to(attributes.dtype), ext)
    Ba, N, C = attributes.shape
    lin, fid, bidx = covered_pixels(fragments.pix_to_face)
    vid = faces.index_select(0, fid)  # (P, 3)
    base = bidx[:, None] * N if Ba == B else torch.zeros_like(bidx)[:, None]
    vals = attributes.reshape(Ba * N, C).index_select(0, (base + vid).reshape(-1)).view(-1, 3, C)
    w = fragments.bary.reshape(B * H * W, 3).index_select(0, lin).to(attributes.dtype)
    out_vals = torch.bmm(w.unsqueeze(1), vals).squeeze(1)
    out = torch.zeros((B * H * W, C), dtype=out_vals.dtype, device=attributes.device)
    return out.index_copy(0, lin, out_vals).view(B, H, W, C)
