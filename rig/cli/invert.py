"""``rig align``, ``rig invert``, ``rig train inverter``, ``rig eval invert``: a user's own face into the rig."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import eval_group, main, train_group
from rig.cli.options import checked_option


@train_group.command("inverter")
@click.option("--network", default="default", show_default=True, help="The generator to invert (file or 'default').")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: snapshot.pt, log.jsonl, losses.png and, at the end, inverter.safetensors.")
@click.option("--world", "world_dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="World renders (`rig world sample` folder) the image phase also reconstructs.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its snapshot.")
@checked_option("--latent-steps", rng=limits.STEPS, default=None, help="Steps regressing W+ of generator samples (no G in the loop).")
@checked_option("--image-steps", rng=limits.STEPS, default=None, help="Steps with G and the encoder in the loop.")
@checked_option("--batch", rng=limits.BATCH, default=None, help="Generator samples per step.")
@checked_option("--world-batch", rng=limits.BATCH, default=None, help="World renders per image-phase step.")
@checked_option("--seed", rng=limits.SEED, default=None)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_inverter_cmd(network, out_dir, world_dir, resume, latent_steps, image_steps, batch, world_batch, seed,
                       quiet) -> None:
    """Train an image -> W+ inverter for a generator (resumable)."""
    from dataclasses import replace

    from rig.invert.inverter_train import InverterTrainConfig, train_inverter

    overrides = {k: v for k, v in dict(latent_steps=latent_steps, image_steps=image_steps, batch=batch,
                                       world_batch=world_batch, seed=seed).items() if v is not None}
    cfg = replace(InverterTrainConfig(), **overrides)
    out = train_inverter(network, out_dir, cfg, world_dir=world_dir, resume=resume, progress=not quiet)
    click.echo(f"wrote {out}")


@main.command("align")
@click.argument("photo", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The aligned crop (.png).")
@click.option("--network", default="default", show_default=True, help="Whose resolution the crop gets (file or 'default').")
@checked_option("--size", rng=limits.OUTPUT_SIDE, default=None, help="Crop side in pixels instead of the network's resolution.")
@checked_option("--face-index", rng=limits.FACE_INDEX, default=None, help="Which face of several (0 = the largest).")
def align_cmd(photo, output, network, size, face_index) -> None:
    """Cut the FFHQ-style aligned crop of the face in PHOTO; the transform goes to OUTPUT.json."""
    from pathlib import Path

    from rig.errors import InputError
    from rig.invert.align import align_photo, read_photo, save_alignment
    from rig.render.images import save_png

    out = Path(output)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: -o must end in .png")
    if size is None:
        from rig.stylegan2.checkpoints import load_generator

        size = load_generator(network).img_resolution
    if not 8 <= size <= 4096:
        raise InputError(f"--size {size}: choose 8..4096")
    crop, al, notices = align_photo(read_photo(photo), size, face_index, source=photo)
    for line in notices:
        click.echo(f"rig: {line}", err=True)
    save_png(out, crop)
    save_alignment(out.with_suffix(".json"), al)
    click.echo(f"wrote {out} ({size} px; face {al.face_index} of {al.n_faces}, "
               f"crop side {al.side_px:.0f} px in the photo) and {out.with_suffix('.json')}")


@main.command("invert")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The face file (.npz).")
@click.option("--network", default="default", show_default=True, help="The generator (file or 'default').")
@click.option("--rignet", default="default", show_default=True,
              help="RigNet file whose labeler reads the face's rig parameters into the face file ('none': skip).")
@click.option("--inverter", default="default", show_default=True, help="Inverter file (from `rig train inverter`) or 'default'.")
@checked_option("--steps", rng=limits.STEPS, default=150, show_default=True, help="W+ optimisation steps (0: the inverter's guess).")
@checked_option("--tune", "tune_steps", rng=limits.STEPS, default=0, show_default=True,
              help="Pivotal tuning steps: a tuned copy of G is saved beside the face file, and edits use it.")
@click.option("--align/--aligned", "align_flag", default=None,
              help="Force aligning a photo / taking IMAGE as an aligned crop (default: tell by size and landmarks).")
@checked_option("--face-index", rng=limits.FACE_INDEX, default=None, help="Which face of several in a photo (0 = the largest).")
@click.option("--paste-back", "paste_back", type=click.Path(dir_okay=False), default=None,
              help="Also write the photo with the inverted face pasted back (.png; photos only).")
@click.option("--save-image", "save_image", type=click.Path(dir_okay=False), default=None,
              help="Also write target | inverter | optimised [| tuned] side by side (.png).")
@checked_option("--display-size", rng=limits.OUTPUT_SIDE, default=None, help="Upsample --save-image panels to this side (viewing only).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def invert_cmd(image, output, network, rignet, inverter, steps, tune_steps, align_flag, face_index, paste_back,
               save_image, display_size, quiet) -> None:
    """Invert a photo or an aligned crop into the generator's W+: a face file for rig puppet --face."""
    from pathlib import Path

    from rig.errors import InputError

    out = Path(output)
    if out.suffix.lower() != ".npz":
        raise InputError(f"{out}: -o must end in .npz (a face file)")
    for flag, value in (("--paste-back", paste_back), ("--save-image", save_image)):
        if value is not None and Path(value).suffix.lower() != ".png":
            raise InputError(f"{value}: {flag} must end in .png")
    if display_size is not None and not 16 <= display_size <= 4096:
        raise InputError(f"--display-size {display_size}: choose 16..4096")
    align = {None: "auto", True: "align", False: "aligned"}[align_flag]
    ed = _editor(network, rignet)
    face = ed.invert(image, steps=steps, tune=tune_steps, align=align, face_index=face_index, inverter=inverter,
                     progress=not quiet)
    inv = face.inversion
    if paste_back is not None and inv.alignment is None:
        raise InputError(f"{image}: --paste-back needs a photo that was aligned (this was taken as a crop)")
    for line in ed.notices:
        click.echo(f"rig: {line}", err=True)
    written = ed.save_face(face, out)
    final = inv.image_tuned if inv.image_tuned is not None else inv.image
    if paste_back is not None:
        from rig.invert.align import paste_back as paste, read_photo
        from rig.render.images import save_png

        written.append(save_png(paste_back, paste(read_photo(image), final, inv.alignment)))
    if save_image is not None:
        from rig.invert.sheets import stages_strip
        from rig.render.images import save_png

        written.append(save_png(save_image, stages_strip(inv, display_size)))
    p = face.provenance
    line = f"PSNR against the target: inverter {p['psnr_inverter']:.2f} dB, optimised {p['psnr_optimised']:.2f} dB"
    if "psnr_tuned" in p:
        line += f", tuned {p['psnr_tuned']:.2f} dB"
    click.echo(line)
    click.echo("wrote " + ", ".join(str(w) for w in written))


def _editor(network: str, rignet: str):
    from rig.rignet.editor import Editor

    return Editor.load(network, None if rignet.lower() == "none" else rignet)


@eval_group.command("invert")
@click.option("--network", default="default", show_default=True, help="The generator (file or 'default').")
@click.option("--rignet", default="default", show_default=True, help="RigNet for the control table ('none': skip it).")
@click.option("--inverter", default="default", show_default=True, help="Inverter file or 'default'.")
@checked_option("--n", "n_world", rng=limits.COUNT, default=50, show_default=True, help="Held-out world renders (world seed 0).")
@checked_option("--samples", "n_samples", rng=limits.COUNT_OR_NONE, default=16, show_default=True, help="Generator samples (true w known).")
@checked_option("--steps", rng=limits.STEPS, default=150, show_default=True, help="W+ optimisation steps.")
@checked_option("--tune", "tune_steps", rng=limits.STEPS, default=100, show_default=True, help="Pivotal tuning steps (0: none).")
@checked_option("--tune-n", rng=limits.COUNT_OR_NONE, default=8, show_default=True, help="How many of the world renders are also tuned.")
@click.option("--no-dlib", is_flag=True, help="Skip the dlib instrument (faster; landmarks by the encoder only).")
@click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False), default=None,
              help="Write target | inverter | optimised | tuned | turned 20 deg | smile rows here (.png).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the numbers here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_invert_cmd(network, rignet, inverter, n_world, n_samples, steps, tune_steps, tune_n, no_dlib, sheet_path,
                    json_path, quiet) -> None:
    """PSNR, MS-SSIM, landmark error against the truth and RigNet's control table on inverted faces."""
    import json

    from rig.errors import InputError
    from rig.invert.evaluate import evaluate_invert
    from rig.invert.optimize import OptimizeConfig
    from rig.invert.pipeline import InvertConfig
    from rig.invert.tune import TuneConfig
    from rig.io.atomic import write_text_atomic

    if not 1 <= n_world <= 2000 or not 0 <= n_samples <= 2000 or not 0 <= tune_n <= n_world:
        raise InputError("--n 1..2000, --samples 0..2000 and --tune-n 0..--n")
    cfg = InvertConfig(OptimizeConfig(steps=steps), TuneConfig(steps=tune_steps))
    ed = _editor(network, rignet)
    rep = evaluate_invert(ed, n_world, n_samples, cfg, tune_n=tune_n, inverter=inverter, dlib=not no_dlib,
                          rignet=ed.bundle is not None, sheet_path=sheet_path, progress=not quiet)
    for line in rep.lines():
        click.echo(line)
    if json_path:
        write_text_atomic(json_path, json.dumps(rep.numbers, indent=1, default=float))
