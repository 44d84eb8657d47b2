"""Cameras: world points -> pixel coordinates + camera depth.

Conventions (OpenCV):
    camera space: x right, y down, z forward (the camera looks along +z); metres.
    world -> camera: ``X_cam = R @ X_world + t``.
    pixels: ``u = fx * x / z + cx``, ``v = fy * y / z + cy``; pixel (row i, col j) covers
    ``[j, j+1) x [i, i+1)`` so its centre is at ``(u, v) = (j + 0.5, i + 0.5)``.

rig's face models are y up with the face looking along +z (metres), so a camera in front of the
face sits at +z looking towards -z; its rotation flips y and z (``diag(1, -1, -1)``, a proper
rotation, det +1), which keeps triangle winding meaningful for back-face culling.

Both cameras expose ``project(points) -> Projection`` and ``is_perspective``; the rasterizer only
sees the projected ``(u, v, depth)`` triples.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch

from rig.errors import InputError, ShapeError
from rig.io.atomic import write_text_atomic

# Rotation taking rig's y-up, +z-facing world to an OpenCV camera that looks at the face from +z.
_Y_UP_TO_OPENCV = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))


class Projection(NamedTuple):
    """Projected points.

    pixels: (B, N, 2) (u, v) in pixels, u right, v down, pixel centres at half-integers.
    depth: (B, N) camera-space z in metres (distance along the optical axis).
    """

    pixels: torch.Tensor
    depth: torch.Tensor

    def screen(self) -> torch.Tensor:
        """(B, N, 3) ``(u, v, depth)``: the vertex format ``rasterize`` takes."""
        return torch.cat([self.pixels, self.depth.unsqueeze(-1)], dim=-1)


def _check_points(points: torch.Tensor, batch: int) -> torch.Tensor:
    if points.ndim == 2:
        points = points.unsqueeze(0)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ShapeError(f"camera: points must be (B, N, 3) or (N, 3), got {tuple(points.shape)}")
    if points.shape[0] != batch:
        if batch == 1:
            return points
        if points.shape[0] != 1:
            raise ShapeError(f"camera: points batch {points.shape[0]} does not match camera batch {batch}")
        points = points.expand(batch, -1, -1)
    return points


@dataclass(frozen=True)
class PerspectiveCamera:
    """Pinhole camera (OpenCV convention, see the module docstring).

    Attributes:
        K: (B, 3, 3) intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
        R: (B, 3, 3) world-to-camera rotation.
        t: (B, 3) world-to-camera translation in metres.
        width, height: image size in pixels.
    """

    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    width: int
    height: int

    is_perspective = True

    def __post_init__(self) -> None:
        B = self.K.shape[0] if self.K.ndim == 3 else -1
        if self.K.shape != (B, 3, 3) or self.R.shape != (B, 3, 3) or self.t.shape != (B, 3):
            raise ShapeError(f"PerspectiveCamera: expected K (B,3,3), R (B,3,3), t (B,3); got "
                             f"{tuple(self.K.shape)}, {tuple(self.R.shape)}, {tuple(self.t.shape)}")
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"PerspectiveCamera: image size must be positive, got {self.width}x{self.height}")

    @property
    def batch_size(self) -> int:
        return int(self.K.shape[0])

    def to(self, device=None, dtype=None) -> "PerspectiveCamera":
        return PerspectiveCamera(self.K.to(device, dtype), self.R.to(device, dtype), self.t.to(device, dtype),
                                 self.width, self.height)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) or (N, 3) world points in metres -> (B, N, 3) camera-space points."""
        points = _check_points(points, self.batch_size)
        R, t = self.R.to(points.dtype), self.t.to(points.dtype)
        return points @ R.transpose(1, 2) + t.unsqueeze(1)

    def camera_to_pixels(self, points_cam: torch.Tensor) -> Projection:
        """(B, N, 3) camera-space points -> ``Projection`` (no clipping: z <= 0 gives garbage u, v)."""
        K = self.K.to(points_cam.dtype)
        z = points_cam[..., 2]
        x = points_cam[..., 0] / z
        y = points_cam[..., 1] / z
        u = K[:, 0, 0, None] * x + K[:, 0, 1, None] * y + K[:, 0, 2, None]
        v = K[:, 1, 1, None] * y + K[:, 1, 2, None]
        return Projection(torch.stack([u, v], dim=-1), z)

    def project(self, points: torch.Tensor) -> Projection:
        """(B, N, 3) or (N, 3) world points (metres) -> ``Projection`` (pixels, camera z)."""
        return self.camera_to_pixels(self.world_to_camera(points))

    @property
    def center(self) -> torch.Tensor:
        """(B, 3) camera centre in world coordinates: ``-R^T t``."""
        return -(self.R.transpose(1, 2) @ self.t.unsqueeze(-1)).squeeze(-1)

    # ---------------------------------------------------------------- (de)serialisation

    def to_dict(self, index: int = 0) -> dict:
        """One camera of the batch as a JSON-able dict with ``K``, ``R``, ``t``, ``width``, ``height``."""
        return {
            "model": "perspective",
            "K": self.K[index].detach().cpu().double().tolist(),
            "R": self.R[index].detach().cpu().double().tolist(),
            "t": self.t[index].detach().cpu().double().tolist(),
            "width": int(self.width),
            "height": int(self.height),
            "convention": "opencv: x right, y down, z forward; X_cam = R X_world + t; pixel (i,j) centre (j+0.5, i+0.5)",
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "camera") -> "PerspectiveCamera":
        try:
            K = torch.tensor(d["K"], dtype=torch.float64)
            R = torch.tensor(d["R"], dtype=torch.float64)
            t = torch.tensor(d["t"], dtype=torch.float64)
            width, height = int(d["width"]), int(d["height"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{source}: not a camera description (need K, R, t, width, height): {e}") from None
        if K.shape != (3, 3) or R.shape != (3, 3) or t.shape != (3,):
            raise InputError(f"{source}: K and R must be 3x3 and t of length 3")
        return cls(K[None], R[None], t[None], width, height)

    def save_json(self, path: str | os.PathLike, index: int = 0) -> None:
        """Write camera ``index`` of the batch as JSON, atomically."""
        write_text_atomic(path, json.dumps(self.to_dict(index), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "PerspectiveCamera":
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise InputError(f"{path}: camera file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise InputError(f"{path}: expected a JSON object")
        return cls.from_dict(d, str(path))


@dataclass(frozen=True)
class OrthographicCamera:
    """Weak-perspective camera as FLAME trackers (DECA, EMOCA) use it.

    ``X_cam = R @ X_world``; normalised image coords ``n = scale * (X_cam.xy + translation)``
    (``n`` in [-1, 1] spans the shorter image side); pixels ``u = cx + n_x * s``,
    ``v = cy + n_y * s`` with ``s = min(width, height) / 2`` and (cx, cy) the image centre.
    Depth is ``X_cam.z + depth_offset`` (metres), only used for visibility.

    Attributes:
        scale: (B,) normalised units per metre.
        translation: (B, 2) metres, added in camera x/y (camera axes: y down).
        R: (B, 3, 3) world-to-camera rotation (OpenCV axes).
        width, height: image size in pixels.
        depth_offset: metres added to camera z so visible geometry has positive depth.
    """

    scale: torch.Tensor
    translation: torch.Tensor
    R: torch.Tensor
    width: int
    height: int
    depth_offset: float = 10.0

    is_perspective = False

    def __post_init__(self) -> None:
        B = self.scale.shape[0] if self.scale.ndim == 1 else -1
        if self.translation.shape != (B, 2) or self.R.shape != (B, 3, 3):
            raise ShapeError(f"OrthographicCamera: expected scale (B,), translation (B,2), R (B,3,3); got "
                             f"{tuple(self.scale.shape)}, {tuple(self.translation.shape)}, {tuple(self.R.shape)}")

    @property
    def batch_size(self) -> int:
        return int(self.scale.shape[0])

    @classmethod
    def from_weak_perspective(cls, cam: torch.Tensor, width: int, height: int) -> "OrthographicCamera":
        """DECA's ``cam`` (B, 3) = (scale, tx, ty) for a y-up, +z-facing world.

        DECA adds (tx, ty) in the y-up world frame; here camera y points down, hence the sign flip.
        """
        cam = torch.as_tensor(cam)
        if cam.ndim != 2 or cam.shape[-1] != 3:
            raise ShapeError(f"weak-perspective camera must be (B, 3), got {tuple(cam.shape)}")
        B = cam.shape[0]
        R = torch.tensor(_Y_UP_TO_OPENCV, dtype=cam.dtype).expand(B, 3, 3).clone()
        trans = torch.stack([cam[:, 1], -cam[:, 2]], dim=-1)
        return cls(cam[:, 0], trans, R, width, height)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        points = _check_points(points, self.batch_size)
        return points @ self.R.to(points.dtype).transpose(1, 2)

    def project(self, points: torch.Tensor) -> Projection:
        """(B, N, 3) or (N, 3) world points -> ``Projection`` (pixels, depth = camera z + offset)."""
        pc = self.world_to_camera(points)
        s = min(self.width, self.height) / 2.0
        n = self.scale.to(pc.dtype)[:, None, None] * (pc[..., :2] + self.translation.to(pc.dtype)[:, None, :])
        centre = torch.tensor([self.width / 2.0, self.height / 2.0], dtype=pc.dtype, device=pc.device)
        return Projection(centre + s * n, pc[..., 2] + self.depth_offset)

    def to_dict(self, index: int = 0) -> dict:
        return {
            "model": "orthographic",
            "scale": float(self.scale[index]),
            "translation": self.translation[index].detach().cpu().double().tolist(),
            "R": self.R[index].detach().cpu().double().tolist(),
            "width": int(self.width),
            "height": int(self.height),
            "depth_offset": float(self.depth_offset),
        }


# -------------------------------------------------------------------- construction helpers


def intrinsics_from_fov(fov_deg: float, width: int, height: int, dtype=torch.float64) -> torch.Tensor:
    """(3, 3) K with square pixels whose vertical field of view is ``fov_deg`` (degrees); centred."""
    if not 0.0 < fov_deg < 180.0:
        raise InputError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    f = (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return torch.tensor([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=dtype)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera (R (B,3,3), t (B,3)) for a camera at ``eye`` looking at ``target``.

    eye, target: (B, 3) or (3,) world points (metres); up: world up direction (default +y).
    The image's v axis points along ``-up`` (OpenCV: y down).
    """
    eye = torch.as_tensor(eye, dtype=torch.float64)
    target = torch.as_tensor(target, dtype=eye.dtype)
    eye, target = torch.broadcast_tensors(eye.reshape(-1, 3), target.reshape(-1, 3))
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype) if up is None else torch.as_tensor(up, dtype=eye.dtype)
    up = up.reshape(-1, 3).expand_as(eye)
    z = target - eye
    z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x = torch.cross(z, up, dim=-1)  # forward x up = right, for y down
    if bool((x.norm(dim=-1) < 1e-9).any()):
        raise InputError("look_at: viewing direction is parallel to the up vector")
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], dim=1)
    t = -(R @ eye.unsqueeze(-1)).squeeze(-1)
    return R, t


def frame_head(vertices: torch.Tensor, width: int, height: int, fov_deg: float = 12.0,
               margin: float = 1.15, center: torch.Tensor | None = None) -> PerspectiveCamera:
    """A perspective camera in front of a y-up, +z-facing head that fits its bounds in the image.

    The camera looks along -z world from in front of the face at the centre of the vertices'
    bounding box, and stands back far enough that the bounding sphere (radius times ``margin``)
    fits the smaller field of view.

    vertices: (V, 3) or (B, V, 3) world points in metres (the pose the camera must frame; pass
    the neutral mesh to keep one camera across poses). Returns a batch-1 camera (B if batched).
    """
    v = torch.as_tensor(vertices, dtype=torch.float64).detach()
    if v.ndim == 2:
        v = v.unsqueeze(0)
    if v.ndim != 3 or v.shape[-1] != 3 or v.shape[1] == 0:
        raise ShapeError(f"frame_head: vertices must be (V, 3) or (B, V, 3), got {tuple(v.shape)}")
    lo, hi = v.min(dim=1).values, v.max(dim=1).values
    c = (lo + hi) / 2 if center is None else torch.as_tensor(center, dtype=torch.float64).reshape(-1, 3).expand_as(lo)
    radius = (v - c[:, None, :]).norm(dim=-1).max(dim=1).values * margin
    K = intrinsics_from_fov(fov_deg, width, height)
    half_fov = math.atan(min(width, height) / 2.0 / float(K[1, 1]))
    dist = radius / math.sin(half_fov)
    B = v.shape[0]
    eye = c + torch.stack([torch.zeros_like(dist), torch.zeros_like(dist), dist], dim=-1)
    R = torch.tensor(_Y_UP_TO_OPENCV, dtype=torch.float64).expand(B, 3, 3).clone()
    t = -(R @ eye.unsqueeze(-1)).squeeze(-1)
    return PerspectiveCamera(K.expand(B, 3, 3).clone(), R, t, width, height)
