"""One call from a posed mesh (or a face model + parameters) to every render pass.

``render_mesh`` takes world-space vertices; ``render_face`` poses a ``FaceModel`` first and adds
its UVs, albedo, region labels and landmarks. Both return a ``RenderPasses`` record. Colours are
linear RGB (``to_srgb`` before writing 8-bit images).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from rig.errors import ShapeError
from rig.render.antialias import antialias
from rig.render.rasterize import Fragments, RasterSettings, covered_pixels, interpolate, rasterize
from rig.render.shading import light_preset, sample_texture, sh_shading_points, vertex_normals

# Linear-RGB albedo per region when a model has no albedo texture (order = REGION_NAMES).
DEFAULT_REGION_ALBEDO = {
    "skin": (0.62, 0.42, 0.33), "lips": (0.52, 0.22, 0.22), "eyes": (0.80, 0.80, 0.78),
    "brows": (0.10, 0.06, 0.04), "teeth": (0.85, 0.82, 0.74), "hair": (0.08, 0.05, 0.03),
    "neck": (0.62, 0.42, 0.33),
}
DEFAULT_ALBEDO = (0.62, 0.42, 0.33)


@dataclass(frozen=True)
class RenderConfig:
    """How ``render_face`` / ``render_mesh`` render.

    light: preset name (``rig.render.shading.LIGHT_PRESETS``) or an SH tensor (9, 3) / (B, 9, 3).
    background: linear RGB of background pixels in ``rgb`` and ``albedo``.
    antialias: blend silhouettes (gives edge gradients; see ``rig.render.antialias``).
    cull_backfaces: skip triangles facing away (faster; closed meshes look the same).
    impl: rasterizer and interpolation implementation, "auto" | "cpp" | "ref".
    landmark_depth_tolerance: metres a landmark may lie behind the z-buffer and still count as visible.
    use_albedo_texture: sample the model's albedo texture when it has one and UVs.
    """

    light: object = "studio"
    background: tuple = (0.0, 0.0, 0.0)
    antialias: bool = True
    cull_backfaces: bool = False
    impl: str = "auto"
    landmark_depth_tolerance: float = 0.006
    use_albedo_texture: bool = True


@dataclass
class RenderPasses:
    """Every pass of one render; B images of H x W.

    rgb: (B, H, W, 3) shaded linear RGB (background = config.background).
    albedo: (B, H, W, 3) linear RGB albedo (background = config.background).
    normal: (B, H, W, 3) unit normals in camera space (OpenCV axes; facing the camera => z < 0), 0 in
        background.
    depth: (B, H, W) camera z in metres, +inf in background.
    mask: (B, H, W) bool coverage of pixel centres.
    uv: (B, H, W, 2) texture coordinates (v up), 0 in background / without UVs.
    region: (B, H, W) int64 index into ``region_names`` (the label of the nearest triangle corner),
        -1 in background or without labels.
    landmarks: (B, L, 2) projected landmarks in pixels (L = 68, or 0 without landmarks).
    landmarks_visible: (B, L) bool: inside the image and not behind the z-buffer by more than the
        tolerance.
    landmarks_depth: (B, L) camera z of the landmarks in metres.
    fragments: the rasterizer's output.
    """

    rgb: torch.Tensor
    albedo: torch.Tensor
    normal: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    uv: torch.Tensor
    region: torch.Tensor
    landmarks: torch.Tensor
    landmarks_visible: torch.Tensor
    landmarks_depth: torch.Tensor
    fragments: Fragments
    region_names: tuple = field(default_factory=tuple)


def landmark_visibility(pixels: torch.Tensor, depth: torch.Tensor, zbuffer: torch.Tensor,
                        tolerance: float) -> torch.Tensor:
    """(B, L) bool: the pixel containing each landmark exists and its z-buffer depth is at least
    ``depth - tolerance`` (metres). pixels (B, L, 2), depth (B, L), zbuffer (B, H, W) (+inf bg)."""
    B, H, W = zbuffer.shape
    col = torch.floor(pixels[..., 0].detach()).long()
    row = torch.floor(pixels[..., 1].detach()).long()
    inside = (col >= 0) & (col < W) & (row >= 0) & (row < H)
    z = zbuffer.detach()[torch.arange(B, device=zbuffer.device)[:, None], row.clamp(0, H - 1), col.clamp(0, W - 1)]
    return inside & (depth.detach() > 0) & (z >= depth.detach() - tolerance)


def to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB in [0, 1] -> sRGB-encoded values in [0, 1] (clamped)."""
    x = linear.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def _sh_tensor(light, B, dtype, device) -> torch.Tensor:
    sh = light_preset(light) if isinstance(light, str) else torch.as_tensor(light)
    sh = sh.to(device=device, dtype=dtype)
    if sh.ndim == 2:
        sh = sh.unsqueeze(0)
    if sh.ndim != 3 or sh.shape[1:] != (9, 3) or sh.shape[0] not in (1, B):
        raise ShapeError(f"RenderConfig.light: SH must be (9, 3) or (B, 9, 3), got {tuple(sh.shape)}")
    return sh


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, camera, config: RenderConfig = RenderConfig(), *,
                vertex_colors: Optional[torch.Tensor] = None, uv_coords: Optional[torch.Tensor] = None,
                uv_faces: Optional[torch.Tensor] = None, texture: Optional[torch.Tensor] = None,
                vertex_regions: Optional[torch.Tensor] = None, region_names: tuple = (),
                landmarks: Optional[torch.Tensor] = None) -> RenderPasses:
    """Render a world-space mesh with every pass.

    vertices: (B, V, 3) or (V, 3) world points, metres. faces: (F, 3) counter-clockwise from outside.
    camera: ``PerspectiveCamera`` or ``OrthographicCamera`` (batch 1 or B).
    vertex_colors: (B, V, 3) / (V, 3) linear albedo; used when no ``texture`` (+ UVs) is given.
    uv_coords (T, 2), uv_faces (F, 3), texture (Ht, Wt, 3) linear RGB: textured albedo.
    vertex_regions: (V,) int64 labels into ``region_names``. landmarks: (B, L, 3) world points.
    Differentiable w.r.t. vertices, colours, texture and the SH lighting.
    """
    if vertices.ndim == 2:
        vertices = vertices.unsqueeze(0)
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ShapeError(f"render_mesh: vertices must be (B, V, 3), got {tuple(vertices.shape)}")
    B = max(vertices.shape[0], camera.batch_size)
    dtype, device = vertices.dtype, vertices.device
    faces = faces.to(device=device, dtype=torch.int64)
    proj = camera.project(vertices)
    screen = proj.screen()
    if screen.shape[0] != B:
        screen = screen.expand(B, -1, -1)
    settings = RasterSettings(camera.height, camera.width, camera.is_perspective, config.cull_backfaces,
                              impl=config.impl)
    frags = rasterize(screen, faces, settings)
    mask = frags.mask

    world_n = vertex_normals(vertices, faces)
    cam_n = world_n @ camera.R.to(dtype=dtype, device=device).transpose(1, 2)
    normal = interpolate(cam_n, faces, frags, impl=config.impl)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # background stays 0

    uv = torch.zeros(B, camera.height, camera.width, 2, dtype=dtype, device=device)
    if uv_coords is not None and uv_faces is not None:
        uv = interpolate(uv_coords.to(device=device, dtype=dtype), uv_faces, frags, impl=config.impl)
    bg = torch.as_tensor(config.background, dtype=dtype, device=device)
    if texture is not None and uv_coords is not None and uv_faces is not None:
        albedo = sample_texture(texture.to(device=device, dtype=dtype), uv)
    else:
        colours = vertex_colors if vertex_colors is not None else torch.tensor(DEFAULT_ALBEDO, dtype=dtype).expand(
            vertices.shape[1], 3)
        albedo = interpolate(colours.to(device=device, dtype=dtype), faces, frags, impl=config.impl)
    if bool((bg != 0).any()) or texture is not None:  # interpolation already leaves 0 in the background
        albedo = torch.where(mask[..., None], albedo, bg)

    sh = _sh_tensor(config.light, B, dtype, device)
    # Shade only the covered pixels (a face fills a fraction of the frame).
    lin, _, bidx = covered_pixels(frags.pix_to_face)
    flat_albedo = albedo.reshape(-1, 3).index_select(0, lin)
    shaded = flat_albedo * sh_shading_points(normal.reshape(-1, 3).index_select(0, lin), sh, bidx)
    rgb = bg.expand(B * camera.height * camera.width, 3).to(shaded.dtype).index_copy(0, lin, shaded)
    rgb = rgb.view(B, camera.height, camera.width, 3)
    if config.antialias:
        rgb = antialias(rgb, frags, screen, faces)

    region = torch.full_like(frags.pix_to_face, -1)
    if vertex_regions is not None:
        vr = vertex_regions.to(device=device, dtype=torch.int64)
        corner = frags.bary.detach().argmax(dim=-1)
        vid = faces[frags.pix_to_face.clamp_min(0)].gather(-1, corner.unsqueeze(-1)).squeeze(-1)
        region = torch.where(mask, vr[vid], region)

    if landmarks is not None and landmarks.shape[-2] > 0:
        lp = camera.project(landmarks)
        lmk_px, lmk_z = lp.pixels.expand(B, -1, -1), lp.depth.expand(B, -1)
        visible = landmark_visibility(lmk_px, lmk_z, frags.depth, config.landmark_depth_tolerance)
    else:
        lmk_px = torch.zeros(B, 0, 2, dtype=dtype, device=device)
        lmk_z = torch.zeros(B, 0, dtype=dtype, device=device)
        visible = torch.zeros(B, 0, dtype=torch.bool, device=device)
    return RenderPasses(rgb=rgb, albedo=albedo, normal=normal, depth=frags.depth, mask=mask, uv=uv, region=region,
                        landmarks=lmk_px, landmarks_visible=visible, landmarks_depth=lmk_z, fragments=frags,
                        region_names=tuple(region_names))


def default_vertex_albedo(vertex_regions, region_names, dtype=torch.float64) -> torch.Tensor:
    """(V, 3) linear albedo from region labels (``DEFAULT_REGION_ALBEDO``; unknown names get skin)."""
    table = torch.tensor([DEFAULT_REGION_ALBEDO.get(n, DEFAULT_ALBEDO) for n in region_names], dtype=dtype)
    return table[torch.as_tensor(vertex_regions, dtype=torch.int64)]


def render_face(face_model, params, camera, config: RenderConfig = RenderConfig()) -> RenderPasses:
    """Pose ``face_model`` (``rig.face_model.FaceModel``) with ``params`` (``RigParams``) and render.

    Uses the model's albedo texture + UVs when present (``config.use_albedo_texture``), else
    per-region default colours (or a uniform skin colour without region labels); its region labels
    for the ``region`` pass and its 68 landmarks for ``landmarks``. Gradients flow to ``params``.
    """
    out = face_model(params)
    data = face_model.data
    dtype, device = out.vertices.dtype, out.vertices.device

    def t(a, dt=dtype):
        return None if a is None else torch.as_tensor(a, dtype=dt, device=device)

    uv_coords, uv_faces = t(data.uv_coords), t(data.uv_faces, torch.int64)
    texture = t(data.albedo_mean) if config.use_albedo_texture else None
    regions = t(data.vertex_regions, torch.int64)
    colours = default_vertex_albedo(regions.cpu(), data.region_names).to(device, dtype) if regions is not None else None
    return render_mesh(out.vertices, face_model.faces, camera, config, vertex_colors=colours, uv_coords=uv_coords,
                       uv_faces=uv_faces, texture=texture, vertex_regions=regions,
                       region_names=tuple(data.region_names), landmarks=out.landmarks)
