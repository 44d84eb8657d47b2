"""``rig label``, ``rig puppet``, ``rig train rignet``, ``rig eval rignet``: steering StyleGAN with the rig."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import eval_group, main, train_group
from rig.cli.options import checked_option


@main.command("label")
@click.option("--network", default="default", show_default=True, help="Generator: 'default', NVIDIA .pkl, .pt or .safetensors.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Label-set folder (resumable).")
@checked_option("--n", "n", rng=limits.COUNT, required=True, help="Number of latents to draw and label.")
@click.option("--labeler", type=click.Choice(["encoder", "track"]), default="encoder", show_default=True,
              help="encoder: the default world's face-parameter encoder; track: dlib 68 landmarks + the tracker's "
                   "model fit (any face generator; needs the [track] extra).")
@checked_option("--seed", rng=limits.SEED, default=0, show_default=True, help="Sample i depends on (seed, i) only.")
@checked_option("--mix-prob", rng=limits.PROBABILITY, default=0.5, show_default=True, help="Share of style-mixed W+ latents.")
@checked_option("--trunc", "truncation_psi", rng=limits.TRUNCATION_PSI, default=1.0, show_default=True, help="Truncation psi.")
@checked_option("--shard-size", rng=limits.COUNT, default=1024, show_default=True)
@checked_option("--batch", rng=limits.BATCH, default=64, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def label_cmd(network, out_dir, n, labeler, seed, mix_prob, truncation_psi, shard_size, batch, device, quiet) -> None:
    """Draw W+ latents of a generator and label G(w) with rig parameters (for rig train rignet)."""
    from pathlib import Path

    from rig.rignet.labels import LabelConfig, label_latents, summary_lines

    cfg = LabelConfig(network, Path(out_dir), n, labeler, seed, shard_size, batch, mix_prob, truncation_psi, device)
    for line in summary_lines(label_latents(cfg, progress=not quiet), out_dir):
        click.echo(line)


@train_group.command("rignet")
@click.option("--network", default="default", show_default=True, help="The generator the label set was drawn from.")
@click.option("--labels", "labels_dir", required=True, type=click.Path(file_okay=False), help="Folder written by rig label.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: snapshot.pt, log.jsonl, losses.png and, at the end, rignet.safetensors.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its snapshot.")
@click.option("--init", "init", type=click.Path(dir_okay=False), default=None,
              help="Start from this RigNet file's F and RigNet (same generator and controls): a fine-tune.")
@checked_option("--reader-steps", rng=limits.STEPS, default=None, help="Steps of the parameter reader F.")
@checked_option("--steps", rng=limits.STEPS, default=None, help="RigNet steps with F as the labeler's stand-in.")
@checked_option("--g-steps", rng=limits.STEPS, default=None, help="RigNet steps with G and the labeler in the loop (0: skip).")
@click.option("--design", type=click.Choice(["delta", "absolute"]), default=None,
              help="delta: the decoder sees the requested change (zero edit = w exactly); absolute: StyleRig's "
                   "baseline (the decoder sees the absolute target).")
@click.option("--layers", "layers_spec", default=None,
              help="Which W+ layers each group may move, e.g. 'pose=0-3,jaw=0-5,expression=0-5,eyes=0-7'.")
@checked_option("--w-latent", rng=limits.WEIGHT, default=None, help="Weight of |w' - w|^2 (identity by staying close).")
@checked_option("--w-appearance", rng=limits.WEIGHT, default=None,
              help="Weight of the colour statistics of G(w') against G(w) in the generator phase.")
@checked_option("--w-preset", rng=limits.WEIGHT, default=None,
              help="Weight of the shortfall along a requested preset's direction.")
@checked_option("--preset-share", rng=limits.PROBABILITY, default=None, help="Share of training targets that are presets.")
@checked_option("--seed", rng=limits.SEED, default=None)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_rignet_cmd(network, labels_dir, out_dir, resume, init, reader_steps, steps, g_steps, design, layers_spec,
                     w_latent, w_appearance, w_preset, preset_share, seed, quiet) -> None:
    """Train the parameter reader F and RigNet on a label set (resumable)."""
    from dataclasses import replace

    from rig.errors import InputError
    from rig.rignet.model import parse_layers
    from rig.rignet.train import RigNetTrainConfig, train_rignet

    cfg = RigNetTrainConfig()
    overrides = {k: v for k, v in dict(reader_steps=reader_steps, steps=steps, g_steps=g_steps, seed=seed,
                                       w_latent=w_latent, w_appearance=w_appearance, w_preset=w_preset).items()
                 if v is not None}
    if preset_share is not None:
        if not 0 <= preset_share < 1:
            raise InputError(f"--preset-share {preset_share}: choose 0..1")
        rest = [p for p in cfg.mode_probs[:3]]
        overrides["mode_probs"] = tuple(p * (1 - preset_share) / sum(rest) for p in rest) + (preset_share,)
    rcfg = cfg.rignet
    if design is not None:
        rcfg = replace(rcfg, design=design)
    if layers_spec is not None:
        from rig.rignet.model import default_layers

        rcfg = replace(rcfg, layers=dict(rcfg.layers or default_layers(), **parse_layers(layers_spec)))
    cfg = replace(cfg, rignet=rcfg, **overrides)
    out = train_rignet(network, labels_dir, out_dir, cfg, resume=resume, progress=not quiet, init=init)
    click.echo(f"wrote {out}")


def _angle(name: str):
    return checked_option(f"--{name}", rng=limits.ANGLE_DEG, default=None,
                          help=f"Head {name} in degrees (relative to the source's own reading unless --absolute)."
                          if name != "jaw" else "Jaw opening in degrees (relative unless --absolute).")


@main.command("puppet")
@click.option("--network", default="default", show_default=True, help="Generator: 'default' or a network file.")
@click.option("--rignet", default="default", show_default=True, help="RigNet file trained for that generator.")
@checked_option("--seed", rng=limits.SEED, default=None, help="Source face: this seed as rig generate --seeds draws it.")
@click.option("--class", "cls", default=None, help="Class (index or name) of a conditional network; default: the seed's draw.")
@checked_option("--trunc", "truncation_psi", rng=limits.TRUNCATION_PSI, default=1.0, show_default=True, help="Truncation psi of the seed.")
@click.option("--face", "face_file", type=click.Path(dir_okay=False), default=None, help="Source face file (.npz).")
@click.option("--latent", "latent_file", type=click.Path(dir_okay=False), default=None,
              help="Source W+ latent .npy, (num_ws, w_dim) or (w_dim,).")
@_angle("yaw")
@_angle("pitch")
@_angle("roll")
@_angle("jaw")
@click.option("--expr", "exprs", multiple=True, help="Named preset [:STRENGTH] added to the source's expression "
              "(repeatable; --absolute replaces it), e.g. smile or smile:0.5.")
@click.option("--unit", "units", multiple=True, help="Expression unit NAME=VALUE (face-model units, repeatable).")
@click.option("--eyes", type=click.Choice(["closed", "open"]), default=None, help="Close or open both eyes.")
@click.option("--absolute", is_flag=True, help="Angles and expressions are absolute, not relative to the source.")
@click.option("--sweep", "sweeps", multiple=True, help="PARAM=A:B:N (yaw, pitch, roll, jaw or expr:NAME for a strength), "
              "or expr=NAME,NAME,... (presets at strength 1); two make a grid.")
@click.option("--frames-dir", type=click.Path(file_okay=False), default=None,
              help="With --sweep/--params: every frame as frame_NNNN.png plus targets.json.")
@click.option("--params", "params_file", type=click.Path(dir_okay=False), default=None,
              help="RigParams sequence (.npz/.json, or a rig track output): one frame each; -o OUT.mp4 writes a video.")
@checked_option("--fps", rng=limits.FPS, default=25.0, show_default=True, help="Frame rate of an .mp4 output.")
@click.option("--side-by-side", is_flag=True, help="Put the rig render of the target beside the GAN image.")
@checked_option("--display-size", rng=limits.OUTPUT_SIDE, default=None, help="Upsample the output to this height for viewing.")
@click.option("--save-w", is_flag=True, help="Also write OUT_w.npy: the edited W+ latent.")
@click.option("--save-face", type=click.Path(dir_okay=False), default=None, help="Also write the edited face file (.npz).")
@checked_option("--refine", "refine_steps", rng=limits.STEPS, default=0, show_default=True,
              help="Optimise the edited latent for STEPS so the labeler's reading matches the target.")
@click.option("--device", default="cpu", show_default=True)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="Output .png (or .mp4).")
def puppet_cmd(network, rignet, seed, cls, truncation_psi, face_file, latent_file, yaw, pitch, roll, jaw, exprs, units,
               eyes, absolute, sweeps, frames_dir, params_file, fps, side_by_side, display_size, save_w, save_face,
               refine_steps, device, output) -> None:
    """Puppeteer a StyleGAN face by rig parameters (RigNet)."""
    from pathlib import Path

    from rig.rignet.edit import EditRequest, parse_expr, parse_unit
    from rig.rignet.puppet import PuppetConfig, parse_sweep, run_puppet

    req = EditRequest(yaw, pitch, roll, jaw, tuple(parse_expr(e) for e in exprs), tuple(parse_unit(u) for u in units),
                      eyes, absolute)
    cfg = PuppetConfig(Path(output), network, rignet, seed, cls, truncation_psi,
                       Path(face_file) if face_file else None, Path(latent_file) if latent_file else None, req,
                       tuple(parse_sweep(s) for s in sweeps), Path(params_file) if params_file else None,
                       Path(frames_dir) if frames_dir else None, side_by_side, display_size, save_w,
                       Path(save_face) if save_face else None, refine_steps, fps, device)
    result = run_puppet(cfg)
    for line in result.lines:
        click.echo(line)


@eval_group.command("rignet")
@click.option("--network", default="default", show_default=True)
@click.option("--rignet", default="default", show_default=True)
@checked_option("--n", "n", rng=limits.COUNT, default=64, show_default=True, help="Source faces (seeds SEED..SEED+N-1).")
@checked_option("--seed", rng=limits.SEED, default=1000, show_default=True, help="First source seed.")
@click.option("--no-dlib", is_flag=True, help="Skip the independent dlib reading (the encoder only).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Also write the numbers as JSON.")
@click.option("--sheets", "sheets_dir", type=click.Path(file_okay=False), default=None,
              help="Also write the seeds x yaw and seeds x presets sheets (rig render beside) here.")
@click.option("--baseline", "baseline_labels", type=click.Path(file_okay=False), default=None,
              help="Also compare with a linear yaw direction in W fit on this label set (rig label).")
@click.option("--quiet", is_flag=True)
def eval_rignet_cmd(network, rignet, n, seed, no_dlib, json_out, sheets_dir, baseline_labels, quiet) -> None:
    """The control table of a RigNet: targets vs readings by the encoder and by dlib, beside their floors."""
    import json

    from rig.errors import InputError
    from rig.io.atomic import write_text_atomic
    from rig.rignet.editor import Editor
    from rig.rignet.evaluate import evaluate_rignet

    if not 2 <= n <= 4096:
        raise InputError(f"--n {n}: choose 2..4096")
    ed = Editor.load(network, rignet)
    for line in ed.notices:
        click.echo(line)
    if sheets_dir is not None:
        from rig.rignet.sheets import write_eval_sheets

        for path in write_eval_sheets(ed, sheets_dir, seeds=range(seed, seed + 6)):
            click.echo(f"wrote {path}")
    report = evaluate_rignet(ed, n=n, seed=seed, progress=not quiet, dlib=not no_dlib)
    for line in report.lines():
        click.echo(line)
    if baseline_labels:
        from rig.rignet.evaluate import linear_baseline

        base = linear_baseline(ed, baseline_labels, n=min(n, 32), seed=seed, dlib=not no_dlib)
        report.numbers["linear_baseline"] = base
        click.echo(f"\nlinear yaw direction in W (ridge fit r = {base['fit_r']:.3f}) vs RigNet, relative turns, "
                   f"mean change read by the encoder:")
        for turn, row in base["turns"].items():
            click.echo(f"  {turn:+g} deg: linear {row['linear']:+.1f}, RigNet {row['rignet']:+.1f}")
        if "linear_identity_share_20" in base:
            click.echo(f"  dlib distance of the +-20 deg turn to the unedited face, share of between-seeds "
                       f"{base['between_seeds']:.3f}: linear {base['linear_identity_share_20']:.2f}, "
                       f"RigNet {base['rignet_identity_share_20']:.2f}")
    if json_out:
        write_text_atomic(json_out, json.dumps({"n": report.n, "numbers": report.numbers,
                                                "verdicts": report.verdicts}, indent=1, default=float) + "\n")
