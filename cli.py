"""The ``rig`` command line: parse flags, call the library, print.

Every command imports the library lazily so ``rig --help`` stays instant. Errors derived from
``rig.errors.RigError`` become one line on stderr and exit code 1 (a traceback with ``--debug``).
Angles are degrees here and radians inside the library.
"""

from __future__ import annotations

import functools
import sys

import click


class _RigGroup(click.Group):
    """Click group that turns rig's own errors into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as e:  # noqa: BLE001 - the CLI boundary
            from rig.errors import RigError

            debug = ctx.params.get("debug", False) or (ctx.obj or {}).get("debug", False)
            if debug:
                raise
            if isinstance(e, RigError):
                click.echo(f"rig: error: {e}", err=True)
                sys.exit(1)
            if isinstance(e, KeyboardInterrupt):
                click.echo("rig: interrupted", err=True)
                sys.exit(130)
            click.echo(f"rig: internal error: {type(e).__name__}: {e} (run with --debug for a traceback)", err=True)
            sys.exit(2)


@click.group(cls=_RigGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="rig", message="rig %(version)s")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """rig: StyleGAN as a renderer for a FLAME-layout parametric face rig."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def rig_param_options(fn):
    """The rig-parameter flags shared by ``rig mesh``, ``rig render`` and ``rig puppet``."""
    options = [
        click.option("--face-model", "face_model", default="default", show_default=True,
                     help="'default' (the embedded head), a FLAME generic_model.pkl, or a rig face-model .npz."),
        click.option("--params", "params_file", type=click.Path(dir_okay=False), default=None,
                     help="Rig-parameter file (.npz or .json) with keys shape, expression, global_pose, "
                          "neck_pose, jaw_pose, eye_pose, translation."),
        click.option("--expr", "expr", default=None, help="Expression preset (neutral, smile, surprise, ...)."),
        click.option("--yaw", type=float, default=0.0, show_default=True, help="Head yaw in degrees (+ turns to the head's left)."),
        click.option("--pitch", type=float, default=0.0, show_default=True, help="Head pitch in degrees (+ looks down)."),
        click.option("--roll", type=float, default=0.0, show_default=True, help="Head roll in degrees."),
        click.option("--jaw", type=float, default=None, help="Jaw opening in degrees (overrides the preset's jaw)."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


# ---------------------------------------------------------------- face model: info, mesh

@main.command("info")
@click.option("--face-model", "face_models", multiple=True, default=("default",), show_default=True,
              help="Face model(s) to describe: 'default', a FLAME generic_model.pkl or a rig .npz (repeatable).")
def info_cmd(face_models: tuple[str, ...]) -> None:
    """Show versions, devices, face models and checkpoints available, and compiled kernels."""
    from rig.info import collect_info, format_info

    click.echo(format_info(collect_info(face_models)))


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



# ---------------------------------------------------------------- renderer: render

@main.command("render")
@rig_param_options
@click.option("--size", type=int, default=512, show_default=True, help="Image width and height in pixels.")
@click.option("--fov", "fov", type=float, default=12.0, show_default=True,
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

    from rig.errors import InputError
    from rig.face_model import load_face_model, params_from_flags
    from rig.render.camera import frame_head
    from rig.render.images import parse_pass_names, write_render_outputs
    from rig.render.passes import RenderConfig, render_face
    from rig.render.shading import light_preset, load_sh

    if size < 8 or size > 8192:
        raise InputError(f"--size must be between 8 and 8192, got {size}")
    pass_names = parse_pass_names(passes_spec)
    sh = load_sh(sh_file) if sh_file else light_preset(light)
    model = load_face_model(face_model, dtype=torch.float64)
    params = params_from_flags(model, params_file, expr, yaw, pitch, roll, jaw)
    camera = frame_head(model.v_template, size, size, fov_deg=fov)
    with torch.no_grad():
        passes = render_face(model, params, camera, RenderConfig(light=sh, impl=impl))
    for path in write_render_outputs(passes, camera, output, pass_names, save_npy):
        click.echo(f"wrote {path}")



# ---------------------------------------------------------------- stylegan2: generate, convert

@main.command("generate")
@click.option("--network", "network", required=True, help="Network file (.pkl NVIDIA snapshot, .pt rosinality, "
              ".safetensors rig) or 'default'.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. '0-3,7' (ignored with --ws).")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None,
              help="Truncate only the first N ws (default: all).")
@click.option("--class", "class_idx", type=int, default=None, help="Class label of a conditional network (default: drawn per seed by the class "
                   "frequencies its file stores, as rig's --cond runs do).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--save-raw", is_flag=True, help="Also write seedNNNN.npy: the float32 (C,H,W) image before clamping.")
@click.option("--save-w", is_flag=True, help="Also write seedNNNN_w.npy: the W+ latent (num_ws, w_dim).")
@click.option("--ws", "ws_file", type=click.Path(dir_okay=False), default=None,
              help="Render the W+ latents in this .npy ((N, num_ws, w_dim)) instead of seeds.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--batch", type=int, default=1, show_default=True, help="Images per forward pass.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16 = autocast the synthesis network to bfloat16 (faster on CPUs with AVX-512 BF16).")
@click.option("--impl", type=click.Choice(["auto", "fast", "ref"]), default="auto", show_default=True,
              help="Op implementation: fast path or the reference (NVIDIA-identical) path.")
def generate_cmd(network, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, outdir, save_raw, save_w,
                 ws_file, device, batch, precision, impl) -> None:
    """Generate images with a StyleGAN2 generator, as NVIDIA's generate.py does."""
    from pathlib import Path

    from rig.stylegan2.generate import GenerateConfig, generate_images, parse_seeds

    cfg = GenerateConfig(network=network, outdir=Path(outdir), seeds=parse_seeds(seeds) if ws_file is None else (),
                         truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx,
                         noise_mode=noise_mode, save_raw=save_raw, save_w=save_w,
                         ws_file=Path(ws_file) if ws_file else None, device=device, batch=batch, precision=precision,
                         impl=impl)
    result = generate_images(cfg)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {len(result.written)} files to {outdir}"
               + (f" (skipped {len(result.skipped)} already done)" if result.skipped else ""))


@main.command("convert")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--only", "only", multiple=True, type=click.Choice(["G_ema", "G", "D"]),
              help="Write only these networks (repeatable), e.g. --only G_ema to ship a generator.")
def convert_cmd(src, dst, only) -> None:
    """Convert a network: NVIDIA .pkl / rosinality .pt / rig .safetensors -> .safetensors or rosinality .pt."""
    from rig.stylegan2.checkpoints import convert

    nets = convert(src, dst, only=tuple(only))
    for note in nets.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {dst} ({', '.join(name for name, _ in nets.items())} from {src})")


# ---------------------------------------------------------------- world: world sample, train, eval

@main.group("world")
def world_group() -> None:
    """The embedded default world: synthetic face renders with known parameters."""


@world_group.command("sample")
@click.option("--n", "n", type=int, required=True, help="Number of images.")
@click.option("--size", "size", type=int, default=64, show_default=True, help="Image side in pixels (power of two).")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed (image i depends on seed and i only).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Dataset folder (resumable).")
@click.option("--shard-size", type=int, default=256, show_default=True, help="Images per shard.")
@click.option("--face-model", "face_model", default="default", show_default=True, help="Face model to draw heads from.")
@click.option("--no-align-rotation", is_flag=True, help="Keep the head's roll instead of levelling the eyes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def world_sample_cmd(n, size, seed, out_dir, shard_size, face_model, no_align_rotation, quiet) -> None:
    """Render a sharded world dataset (PNG + per-shard parameters); skips finished shards."""
    from rig.world.config import WorldConfig
    from rig.world.sampler import sample_world

    cfg = WorldConfig(resolution=size, align_rotation=not no_align_rotation)
    done = sample_world(out_dir, n, seed, cfg, face_model=face_model, shard_size=shard_size, progress=not quiet)
    click.echo(f"{out_dir}: rendered {done} images ({n} in the dataset)")


@main.group("train")
def train_group() -> None:
    """Train rig's networks on a world dataset (runs resume from their snapshots)."""


@train_group.command("generator")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="World dataset folder (from `rig world sample`).")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: snapshots/, grids/, loss.png, reals.png.")
@click.option("--resume", is_flag=True, help="Continue from the newest snapshot in --out.")
@click.option("--config", "config", type=click.Choice(["tiny", "64", "128"]), default="64", show_default=True,
              help="Network / schedule preset (ignored on --resume: the snapshot's config rules).")
@click.option("--kimg", type=float, default=None, help="Train until this many thousand real images (total).")
@click.option("--batch", type=int, default=None, help="Images per step (new runs only).")
@click.option("--snapshot-kimg", type=float, default=None, help="Snapshot every this many kimg.")
@click.option("--snapshot-minutes", type=float, default=None, help="Also snapshot after this many minutes.")
@click.option("--seed", type=int, default=None, help="Seed of every random stream (new runs only).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (new runs only).")
@click.option("--init", "init", default=None,
              help="Start a new run from this network's weights (file or 'default'; G, G_ema and, if it has one, D) "
                   "instead of random ones. The network must match --config.")
@click.option("--g-freeze-kimg", type=float, default=None,
              help="Train only D for this many kimg first (new runs only; for --init from a file without a D).")
@click.option("--preset-repeat", default=None, metavar="NAME=K,...",
              help="Show dataset images drawn from these named presets (or, with --cond, of these classes) K times "
                   "per epoch (new runs only), e.g. blink=3,smile=2,none+eyes_closed=4.")
@click.option("--glr", type=float, default=None, help="G's Adam learning rate (new runs only; default 0.0025).")
@click.option("--dlr", type=float, default=None, help="D's Adam learning rate (new runs only; default 0.0025).")
@click.option("--reader", default=None, metavar="ENCODER",
              help="Also train a critic on what this face encoder (file or 'default') reads off real and generated "
                   "images - expression, jaw, head pose - so G must draw their full range (new runs only). "
                   "Evaluate with a different encoder and read the per-tone line of `rig eval generator`: "
                   "encoders trained on the same world share blind spots (docs/world.md).")
@click.option("--reader-weight", type=float, default=None,
              help="Weight of the reading critic in G's loss (new runs only; default 1).")
@click.option("--reader-r1-gamma", type=float, default=None,
              help="R1 weight of the reading critic (new runs only; default 1; lower lets it push harder).")
@click.option("--local-d", "local_d", multiple=True, metavar="REGION",
              help="Also train a critic that sees only this square of the images (new runs only; repeatable): "
                   "'eyes' or 'mouth' of rig's aligned faces, or NAME=TOP,LEFT,SIZE in fractions of the image side.")
@click.option("--local-weight", type=float, default=None,
              help="Weight of each local critic in G's loss (new runs only; default 1).")
@click.option("--cond", type=click.Choice(["preset", "preset+state"]), default=None,
              help="Class-conditional training (new runs only): each image's label is its named expression preset "
                   "or 'none'; 'preset+state' splits 'none' by closed eyes and a dropped jaw. The network file keeps "
                   "how often each class occurs, and sampling draws labels by it.")
@click.option("--label-mismatch", type=float, default=None,
              help="With --cond: D also learns to score real images under a wrong label as fake, with this weight "
                   "(a matching-aware D; new runs only; default 0: off).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_generator_cmd(data_dir, run_dir, resume, config, kimg, batch, snapshot_kimg, snapshot_minutes, seed,
                        threads, init, g_freeze_kimg, preset_repeat, glr, dlr, reader, reader_weight, reader_r1_gamma,
                        local_d, local_weight, cond, label_mismatch, quiet) -> None:
    """StyleGAN2 training of a generator on a world dataset (CPU; resumable)."""
    from rig.stylegan2.training.local_d import parse_local_regions
    from rig.stylegan2.training.run import parse_preset_repeat, train_generator

    schedule = dict(kimg=kimg, snapshot_kimg=snapshot_kimg, snapshot_minutes=snapshot_minutes)
    fixed = {} if resume else dict(batch=batch, seed=seed, threads=threads, g_freeze_kimg=g_freeze_kimg, g_lr=glr, d_lr=dlr,
                                   preset_repeat=parse_preset_repeat(preset_repeat) if preset_repeat else None,
                                   reader=reader, reader_weight=reader_weight, reader_r1_gamma=reader_r1_gamma,
                                   local_critics=parse_local_regions(local_d) if local_d else None,
                                   local_weight=local_weight, label_mismatch=label_mismatch)
    new_run_only = (g_freeze_kimg, preset_repeat, glr, dlr, reader, reader_weight, reader_r1_gamma, local_weight,
                    label_mismatch)
    if resume and (local_d or cond or any(v is not None for v in new_run_only)):
        raise click.UsageError("--g-freeze-kimg, --preset-repeat, --glr, --dlr, --cond, --label-mismatch, the --reader "
                               "and the --local options set up a new run; a resumed run keeps its own")
    trainer, last = train_generator(data_dir, run_dir, config=config, resume=resume, progress=not quiet, init=init,
                                    cond=cond, **schedule, **fixed)
    click.echo(f"trained to {trainer.nimg / 1000:.3f} kimg; last snapshot: {last}")


@train_group.command("encoder")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, exists=True), help="World dataset folder.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Encoder file (.safetensors).")
@click.option("--steps", type=int, default=10000, show_default=True, help="Training steps.")
@click.option("--batch", type=int, default=32, show_default=True, help="Images per step (plus 3/8 as many non-faces).")
@click.option("--holdout", type=int, default=500, show_default=True, help="Last N images held out for the report.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--widths", default="32,64,128,256", show_default=True,
              help="Channels of the stride-2 stages, comma-separated (the last is the FRD feature size).")
@click.option("--spatial-head", type=int, default=256, show_default=True,
              help="0: predict from pooled features; N: from the last feature map's layout through N hidden units.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_encoder_cmd(data_dir, out_path, steps, batch, holdout, seed, widths, spatial_head, quiet) -> None:
    """Train the face-parameter encoder on a world dataset and print its held-out errors."""
    from rig.instruments.encoder import EncoderConfig
    from rig.world.encoder_run import train_encoder_on_world
    from rig.instruments.encoder_train import EncoderTrainConfig

    try:
        stage_widths = tuple(int(w) for w in widths.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {widths!r}", param_hint="--widths") from None
    if not stage_widths or min(stage_widths) < 1 or spatial_head < 0:
        raise click.BadParameter("widths must be positive and --spatial-head >= 0")
    report = train_encoder_on_world(data_dir, out_path, EncoderTrainConfig(steps=steps, batch=batch, holdout=holdout,
                                                                           seed=seed), progress=not quiet,
                                    architecture=EncoderConfig(widths=stage_widths, spatial_head=spatial_head))
    click.echo("\n".join(report.lines()))
    click.echo(f"wrote {out_path}")


@main.group("eval")
def eval_group() -> None:
    """Measure rig's networks."""


@eval_group.command("generator")
@click.option("--network", default="default", show_default=True, help="Generator file or 'default'.")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="World dataset the generator should match (needs 2 x --n images). Default: the first "
                   "2 x --n images of the world with seed 0, rendered once into ~/.cache/rig/world.")
@click.option("--encoder", "encoder_path", default="default", show_default=True,
              help="Face-parameter encoder (.safetensors from `rig train encoder`) or 'default'.")
@click.option("--n", "n", type=int, default=1000, show_default=True, help="Generated samples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sheets", "sheets_dir", default=None, type=click.Path(file_okay=False),
              help="Also write samples.png (8 x 8 random samples), interpolation.png (W walks) and presets.png "
                   "(per named expression: the world's 6 widest, then the generator's 6 widest) here.")
@click.option("--which", type=click.Choice(["G_ema", "G"]), default="G_ema", show_default=True,
              help="Which generator of the file: the moving average that ships, or the raw G of a training run.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_generator_cmd(network, data_dir, encoder_path, n, seed, sheets_dir, which, quiet) -> None:
    """FRD vs the world (beside its floor), plausible-face rate and parameter spreads of a generator."""
    from rig.world.encoder_run import eval_generator_on_world

    report = eval_generator_on_world(network, data_dir, encoder_path, n, seed=seed, progress=not quiet,
                                     sheets_dir=sheets_dir, which=which)
    click.echo("\n".join(report.lines()))
    if sheets_dir:
        from pathlib import Path

        written = [f for f in ("samples.png", "interpolation.png", "presets.png") if (Path(sheets_dir) / f).is_file()]
        click.echo(f"wrote {', '.join(written)} to {sheets_dir}")



# ---------------------------------------------------------------- tracker: track


@main.command("track")
@click.argument("video", type=click.Path(exists=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Where to write track.npz (rig parameters per frame, landmarks, camera).")
@click.option("--face-model", "face_model", default="default", show_default=True,
              help="'default' (the embedded head), a FLAME generic_model.pkl, or a rig face-model .npz.")
@click.option("--overlay", "overlay", type=click.Path(dir_okay=False), default=None,
              help="Also write an MP4 with detected (green) / fitted (red) landmarks and the mesh outline.")
@click.option("--start", type=float, default=0.0, show_default=True, help="First second of the clip to track.")
@click.option("--end", type=float, default=None, help="Last second (exclusive); default: the end of the clip.")
@click.option("--smooth", type=float, default=1.0, show_default=True,
              help="Temporal smoothness (0 = none; larger = smoother and laggier).")
@click.option("--focal", type=float, default=None, help="Focal length in pixels (default: estimated).")
@click.option("--camera", type=click.Choice(["perspective", "weak_perspective"]), default="perspective",
              show_default=True, help="Camera model of the fit.")
@click.option("--fps", "sequence_fps", type=float, default=25.0, show_default=True,
              help="Frame rate of an image-folder input (video files carry their own).")
def track_cmd(video, output, face_model, overlay, start, end, smooth, focal, camera, sequence_fps):
    """Track the face in VIDEO (a video file or an image folder) and fit the face model to it."""
    import numpy as np

    from rig.face_model.loading import load_face_model
    from rig.io.video import read_video_info
    from rig.track.config import TrackConfig
    from rig.track.pipeline import save_track, track_video, write_overlay

    info = read_video_info(video, sequence_fps=sequence_fps)
    if start < 0 or (end is not None and end <= start):
        raise click.BadParameter(f"need 0 <= start < end, got start={start}, end={end}")
    first = int(round(start * info.fps))
    last = None if end is None else int(round(end * info.fps))
    config = TrackConfig(camera=camera, focal_px=focal, smooth=smooth)
    model = load_face_model(face_model)
    result = track_video(video, model, config, start=first, end=last, face_model_name=str(face_model),
                         sequence_fps=sequence_fps)
    save_track(output, result)
    lt, fit = result.landmarks, result.fit
    n, found = result.n_frames, int(lt.detected.sum())
    total_s = result.timings["landmarks"] + result.timings["fit"]
    click.echo(f"tracked {n} frames of {video} ({info.width}x{info.height} @ {info.fps:.2f} fps) in {total_s:.1f} s "
               f"({n / max(total_s, 1e-9):.1f} fps): face found in {found}/{n} frames, "
               f"landmark fit RMS {np.nanmean(fit.residual_px):.2f} px"
               + (f", focal {fit.focal_px:.0f} px" if fit.focal_px else ""))
    if found < n:
        missing = np.flatnonzero(~lt.detected) + first
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        click.echo(f"warning: no face in {n - found} frame(s), interpolated and flagged (detected=False): {shown}")
    from rig.track.pipeline import outlier_frames

    suspect = np.flatnonzero(outlier_frames(fit.residual_px, lt.landmarks)) + first
    if len(suspect):
        click.echo(f"note: {len(suspect)} frame(s) fit much worse than the rest (fit_outlier): "
                   + ", ".join(str(i) for i in suspect[:20]) + (" ..." if len(suspect) > 20 else ""))
    if result.truncated:
        click.echo(f"warning: {video} stops decoding before its declared end (damaged or cut file); "
                   f"tracked the {n} frames that decode")
    click.echo(f"wrote {output}")
    if overlay:
        write_overlay(overlay, result, model)
        click.echo(f"wrote {overlay}")


if __name__ == "__main__":
    main()
