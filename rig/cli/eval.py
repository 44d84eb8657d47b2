"""``rig eval generator``: measure a generator against the world."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import eval_group
from rig.cli.options import checked_option


@eval_group.command("generator")
@click.option("--network", default="default", show_default=True, help="Generator file or 'default'.")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="World dataset the generator should match (needs 2 x --n images). Default: the first "
                   "2 x --n images of the world with seed 0, rendered once into ~/.cache/rig/world.")
@click.option("--encoder", "encoder_path", default="default", show_default=True,
              help="Face-parameter encoder (.safetensors from `rig train encoder`) or 'default'.")
@checked_option("--n", "n", rng=limits.COUNT, default=1000, show_default=True, help="Generated samples.")
@checked_option("--seed", rng=limits.SEED, default=0, show_default=True)
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
