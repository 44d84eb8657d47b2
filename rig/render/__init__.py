"""rig.render: cameras, a differentiable rasterizer (C++ kernel + PyTorch reference), shading, passes.

Stages (each testable alone): ``camera`` (world -> pixels + depth) -> ``rasterize`` (visibility,
``Fragments``) -> ``interpolate`` / ``antialias`` -> ``shading`` -> ``passes`` (``render_face``).
"""

from rig.render.camera import (OrthographicCamera, PerspectiveCamera, Projection, frame_head,
                               intrinsics_from_fov, look_at)
from rig.render.antialias import antialias
from rig.render.passes import RenderConfig, RenderPasses, render_face, render_mesh, to_srgb
from rig.render.rasterize import (Fragments, RasterSettings, barycentrics_from_faces, interpolate,
                                  rasterize)
from rig.render.shading import (light_preset, sample_texture, sh_from_lights, sh_shading, shade_lambert,
                                vertex_normals)



def kernel_status() -> dict[str, str]:
    """``rig info`` hook: state of the C++ rasterizer build (never compiles)."""
    from rig._ext import extension_status
    from rig.render.rasterize_cpp import KERNEL_NAME, KERNEL_SOURCE

    return {KERNEL_NAME: extension_status(KERNEL_NAME, [KERNEL_SOURCE])}


def build_kernels() -> dict[str, str]:
    """``rig info --build`` hook: build the C++ rasterizer now (or find it built)."""
    from rig._ext import build_extension
    from rig.render.rasterize_cpp import KERNEL_NAME, KERNEL_SOURCE, KERNEL_TITLE

    return {KERNEL_NAME: build_extension(KERNEL_NAME, [KERNEL_SOURCE], title=KERNEL_TITLE)}


__all__ = [
    "OrthographicCamera", "PerspectiveCamera", "Projection", "frame_head", "intrinsics_from_fov", "look_at",
    "Fragments", "RasterSettings", "barycentrics_from_faces", "interpolate", "rasterize", "antialias",
    "RenderConfig", "RenderPasses", "render_face", "render_mesh", "to_srgb",
    "light_preset", "sample_texture", "sh_from_lights", "sh_shading", "shade_lambert", "vertex_normals",
]
