"""``rig train generator``, ``rig train encoder``: training on a world dataset."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import train_group
from rig.cli.options import checked_option


@train_group.command("generator")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="World dataset folder (from `rig world sample`).")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: snapshots/, grids/, loss.png, reals.png.")
@click.option("--resume", is_flag=True, help="Continue from the newest snapshot in --out.")
@click.option("--config", "config", type=click.Choice(["tiny", "64", "128"]), default="64", show_default=True,
              help="Network / schedule preset (ignored on --resume: the snapshot's config rules).")
@checked_option("--kimg", rng=limits.KIMG, default=None, help="Train until this many thousand real images (total).")
@checked_option("--batch", rng=limits.BATCH, default=None, help="Images per step (new runs only).")
@checked_option("--snapshot-kimg", rng=limits.KIMG, default=None, help="Snapshot every this many kimg.")
@checked_option("--snapshot-minutes", rng=limits.MINUTES, default=None, help="Also snapshot after this many minutes.")
@checked_option("--seed", rng=limits.SEED, default=None, help="Seed of every random stream (new runs only).")
@checked_option("--threads", rng=limits.THREADS, default=None, help="torch CPU threads (new runs only).")
@click.option("--init", "init", default=None,
              help="Start a new run from this network's weights (file or 'default'; G, G_ema and, if it has one, D) "
                   "instead of random ones. The network must match --config.")
@checked_option("--g-freeze-kimg", rng=limits.KIMG_OR_NONE, default=None,
              help="Train only D for this many kimg first (new runs only; for --init from a file without a D).")
@click.option("--preset-repeat", default=None, metavar="NAME=K,...",
              help="Show dataset images drawn from these named presets (or, with --cond, of these classes) K times "
                   "per epoch (new runs only), e.g. blink=3,smile=2,none+eyes_closed=4.")
@checked_option("--glr", rng=limits.LEARNING_RATE, default=None, help="G's Adam learning rate (new runs only; default 0.0025).")
@checked_option("--dlr", rng=limits.LEARNING_RATE, default=None, help="D's Adam learning rate (new runs only; default 0.0025).")
@click.option("--reader", default=None, metavar="ENCODER",
              help="Also train a critic on what this face encoder (file or 'default') reads off real and generated "
                   "images - expression, jaw, head pose - so G must draw their full range (new runs only). "
                   "Evaluate with a different encoder and read the per-tone line of `rig eval generator`: "
                   "encoders trained on the same world share blind spots (docs/world.md).")
@checked_option("--reader-weight", rng=limits.WEIGHT, default=None,
              help="Weight of the reading critic in G's loss (new runs only; default 1).")
@checked_option("--reader-r1-gamma", rng=limits.WEIGHT, default=None,
              help="R1 weight of the reading critic (new runs only; default 1; lower lets it push harder).")
@click.option("--local-d", "local_d", multiple=True, metavar="REGION",
              help="Also train a critic that sees only this square of the images (new runs only; repeatable): "
                   "'eyes' or 'mouth' of rig's aligned faces, or NAME=TOP,LEFT,SIZE in fractions of the image side.")
@checked_option("--local-weight", rng=limits.WEIGHT, default=None,
              help="Weight of each local critic in G's loss (new runs only; default 1).")
@click.option("--cond", type=click.Choice(["preset", "preset+state"]), default=None,
              help="Class-conditional training (new runs only): each image's label is its named expression preset "
                   "or 'none'; 'preset+state' splits 'none' by closed eyes and a dropped jaw. The network file keeps "
                   "how often each class occurs, and sampling draws labels by it.")
@checked_option("--label-mismatch", rng=limits.WEIGHT, default=None,
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
@checked_option("--steps", rng=limits.COUNT, default=10000, show_default=True, help="Training steps.")
@checked_option("--batch", rng=limits.BATCH, default=32, show_default=True, help="Images per step (plus 3/8 as many non-faces).")
@checked_option("--holdout", rng=limits.COUNT_OR_NONE, default=500, show_default=True, help="Last N images held out for the report.")
@checked_option("--seed", rng=limits.SEED, default=0, show_default=True)
@click.option("--widths", default="32,64,128,256", show_default=True,
              help="Channels of the stride-2 stages, comma-separated (the last is the FRD feature size).")
@checked_option("--spatial-head", rng=limits.CHANNELS_OR_NONE, default=256, show_default=True,
              help="0: predict from pooled features; N: from the last feature map's layout through N hidden units.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_encoder_cmd(data_dir, out_path, steps, batch, holdout, seed, widths, spatial_head, quiet) -> None:
    """Train the face-parameter encoder on a world dataset and print its held-out errors."""
    from rig.instruments.encoder import EncoderConfig
    from rig.instruments.encoder_train import EncoderTrainConfig
    from rig.world.encoder_run import train_encoder_on_world

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
