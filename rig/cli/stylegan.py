"""``rig generate``, ``rig convert``: StyleGAN2 networks, as NVIDIA's tools use them."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import main
from rig.cli.options import checked_option


@main.command("generate")
@click.option("--network", "network", required=True, help="Network file (.pkl NVIDIA snapshot, .pt rosinality, "
              ".safetensors rig) or 'default'.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. '0-3,7' (ignored with --ws).")
@checked_option("--trunc", "truncation_psi", rng=limits.TRUNCATION_PSI, default=1.0, show_default=True,
                help="Truncation psi.")
@checked_option("--trunc-cutoff", "truncation_cutoff", rng=limits.LAYER_COUNT, default=None,
              help="Truncate only the first N ws (default: all).")
@checked_option("--class", "class_idx", rng=limits.CLASS_INDEX, default=None, help="Class label of a conditional network (default: drawn per seed by the class "
                   "frequencies its file stores, as rig's --cond runs do).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs in --outdir made with other settings (the "
              "folder's .rig-manifest.json records them; without this a rerun with other settings is refused, one "
              "with the same settings skips the images already there).")
@click.option("--save-raw", is_flag=True, help="Also write seedNNNN.npy: the float32 (C,H,W) image before clamping.")
@click.option("--save-w", is_flag=True, help="Also write seedNNNN_w.npy: the W+ latent (num_ws, w_dim).")
@click.option("--ws", "ws_file", type=click.Path(dir_okay=False), default=None,
              help="Render the W+ latents in this .npy ((N, num_ws, w_dim)) instead of seeds.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@checked_option("--batch", rng=limits.BATCH, default=1, show_default=True, help="Images per forward pass.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16 = autocast the synthesis network to bfloat16 (faster on CPUs with AVX-512 BF16).")
@click.option("--impl", type=click.Choice(["auto", "fast", "ref"]), default="auto", show_default=True,
              help="Op implementation: fast path or the reference (NVIDIA-identical) path.")
def generate_cmd(network, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, outdir, overwrite, save_raw,
                 save_w, ws_file, device, batch, precision, impl) -> None:
    """Generate images with a StyleGAN2 generator, as NVIDIA's generate.py does."""
    from pathlib import Path

    from rig.stylegan2.generate import GenerateConfig, generate_images, parse_seeds

    cfg = GenerateConfig(network=network, outdir=Path(outdir), seeds=parse_seeds(seeds) if ws_file is None else (),
                         truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx,
                         noise_mode=noise_mode, save_raw=save_raw, save_w=save_w,
                         ws_file=Path(ws_file) if ws_file else None, device=device, batch=batch, precision=precision,
                         impl=impl, overwrite=overwrite)
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
