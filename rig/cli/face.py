"""``rig info``, ``rig mesh``, ``rig render``: the face model and its renderer."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import main, rig_param_options
from rig.cli.options import checked_option


@main.command("info")
@click.option("--face-model", "face_models", multiple=True, default=("default",), show_default=True,
              help="Face model(s) to describe: 'default', a FLAME generic_model.pkl or a rig .npz (repeatable).")
@click.option("--build", is_flag=True,
              help="Build the C++ kernels now (about 30 s each, once; cached in the user cache folder) instead of at "
                   "their first use, and report each: cached, built, or failed (the PyTorch reference path then runs).")
def info_cmd(face_models: tuple[str, ...], build: bool) -> None:
    """Show versions, devices, face models and checkpoints available, and compiled kernels."""
    from rig.info import collect_info, format_info

    click.echo(format_info(collect_info(face_models, build=build)))


@main.command("mesh")
@rig_param_options
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Output Wavefront .obj (metres). A sequence parameter file writes OUT_0000.obj, OUT_0001.obj, ...")
def mesh_cmd(face_model: str, params_file: str | None, expr: str | None, yaw: float, pitch: float, roll: float,
             jaw: float | None, output: str) -> None:
    """Write the posed face-model mesh as a Wavefront OBJ."""
    import torch

    from rig.face_model import load_face_model, params_from_flags
    from rig.face_model.export import write_posed_obj

    model = load_face_model(face_model, dtype=torch.float64)
    params = params_from_flags(model, params_file, expr, yaw, pitch, roll, jaw)
    for path in write_posed_obj(model, params, output):
        click.echo(f"wrote {path}")


@main.command("render")
@rig_param_options
@checked_option("--size", rng=limits.OUTPUT_SIDE, default=512, show_default=True, help="Image width and height in pixels.")
@checked_option("--fov", "fov", rng=limits.FOV_DEG, default=12.0, show_default=True,
              help="Vertical field of view in degrees (the camera frames the neutral head).")
@click.option("--passes", "passes_spec", default="rgb", show_default=True,
              help="Comma-separated passes: rgb, albedo, normal, depth, mask, uv, region, landmarks.")
@click.option("--light", default="studio", show_default=True,
              help="Lighting preset: studio, frontal, left, right, top, ambient.")
@click.option("--sh", "sh_file", type=click.Path(dir_okay=False), default=None,
              help="SH lighting file (27 numbers: 9 coefficients x RGB; .npy, .json or text); overrides --light.")
@click.option("--save-npy", "save_npy", is_flag=True,
              help="Also write raw arrays: OUT_depth.npy (float32 metres, +inf background), OUT_mask.npy (bool), ...")
@click.option("--impl", type=click.Choice(["auto", "cpp", "ref"]), default="auto", show_default=True,
              help="Rasterizer implementation.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Output .png; OUT.camera.json is written beside it.")
def render_cmd(face_model: str, params_file: str | None, expr: str | None, yaw: float, pitch: float, roll: float,
               jaw: float | None, size: int, fov: float, passes_spec: str, light: str, sh_file: str | None,
               save_npy: bool, impl: str, output: str) -> None:
    """Render the posed face model (shaded image and other passes) with a camera framing the head."""
    import torch

    from rig.face_model import load_face_model, params_from_flags
    from rig.render.camera import frame_head
    from rig.render.images import parse_pass_names, write_render_outputs
    from rig.render.passes import RenderConfig, render_face
    from rig.render.shading import light_preset, load_sh

    pass_names = parse_pass_names(passes_spec)
    sh = load_sh(sh_file) if sh_file else light_preset(light)
    model = load_face_model(face_model, dtype=torch.float64)
    params = params_from_flags(model, params_file, expr, yaw, pitch, roll, jaw)
    camera = frame_head(model.v_template, size, size, fov_deg=fov)
    with torch.no_grad():
        passes = render_face(model, params, camera, RenderConfig(light=sh, impl=impl))
    for path in write_render_outputs(passes, camera, output, pass_names, save_npy):
        click.echo(f"wrote {path}")
