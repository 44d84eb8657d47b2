"""``rig world sample``: render the embedded default world into a dataset folder."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import main
from rig.cli.options import checked_option


@main.group("world")
def world_group() -> None:
    """The embedded default world: synthetic face renders with known parameters."""


@world_group.command("sample")
@checked_option("--n", "n", rng=limits.COUNT, required=True, help="Number of images.")
@checked_option("--size", "size", rng=limits.WORLD_SIDE, default=64, show_default=True, help="Image side in pixels.")
@checked_option("--seed", rng=limits.SEED, default=0, show_default=True, help="Dataset seed (image i depends on seed and i only).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Dataset folder (resumable).")
@checked_option("--shard-size", rng=limits.COUNT, default=256, show_default=True, help="Images per shard.")
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
