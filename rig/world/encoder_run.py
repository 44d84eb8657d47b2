"""What ``rig train encoder`` and ``rig eval generator`` do: load the world data, call the library, report."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from rig.errors import InputError
from rig.instruments.encoder import TARGET_KEYS, EncoderConfig, EncoderReport, load_encoder, save_encoder
from rig.instruments.encoder_train import EncoderTrainConfig, predict, train_encoder
from rig.world.evaluate import (GeneratorReport, generate_uint8, label_readings, read_generator_and_world,
                                report_from_readings)


def _load_world(data_dir: str | os.PathLike, progress: bool):
    from rig.world.dataset import WorldDataset

    ds = WorldDataset(data_dir, keys=list(TARGET_KEYS))
    return ds, ds.load_images(progress=progress)


def train_encoder_on_world(data_dir: str | os.PathLike, out_path: str | os.PathLike, cfg: EncoderTrainConfig,
                           progress: bool = True, architecture: EncoderConfig | None = None) -> EncoderReport:
    """Train the encoder on a world dataset, write it to ``out_path`` (with its held-out report).

    architecture: widths and head of the network (default ``EncoderConfig()``); its input size and
    expression count are taken from the dataset.
    """
    from dataclasses import replace

    ds, images = _load_world(data_dir, progress)
    enc_cfg = replace(architecture or EncoderConfig(), input_size=min(64, ds.resolution),
                      n_expression=ds.params["expression"].shape[1])
    enc, report, _ = train_encoder(images, ds.params, enc_cfg, cfg, progress=progress)
    save_encoder(enc, out_path, report)
    return report


def eval_world_dir(resolution: int, n_images: int, seed: int = 0, progress: bool = True) -> Path:
    """A world dataset of ``n_images`` at ``resolution`` px drawn with ``seed`` and the default world
    config, rendered once into the user cache (``~/.cache/rig/world/``) and reused. Image i is image i
    of ``rig world sample --seed SEED --size RESOLUTION`` for any ``--n`` (up to one grey level in
    rare pixels where the last render batch holds fewer images)."""
    from rig.paths import user_cache_dir
    from rig.world.config import WorldConfig
    from rig.world.sampler import sample_world

    out = user_cache_dir() / "world" / f"size{resolution}-seed{seed}-n{n_images}"
    sample_world(out, n_images, seed, WorldConfig(resolution=resolution), progress=progress)
    return out


def eval_generator_on_world(network: str, data_dir: str | os.PathLike | None, encoder_path: str | os.PathLike, n: int,
                            seed: int = 0, progress: bool = True, sheets_dir: str | os.PathLike | None = None,
                            which: str = "G_ema") -> GeneratorReport:
    """``rig eval generator``: the ``GeneratorReport`` of ``network`` against the world in ``data_dir``
    (None: ``eval_world_dir`` renders the first 2n world images); ``sheets_dir`` also gets the
    contact sheet, the interpolation strip and, for a world with presets, their extremes
    (``rig.world.sheets``). ``which``: the file's 'G_ema' or its raw 'G' (a training run's)."""
    from rig.stylegan2.checkpoints import load_generator

    G = load_generator(network, which=which)
    enc = load_encoder(encoder_path)
    if data_dir is None:
        data_dir = eval_world_dir(G.img_resolution, 2 * n, progress=progress)
    ds, images = _load_world(data_dir, progress)
    if len(ds) < 2 * n:
        raise InputError(f"{data_dir}: {len(ds)} images, evaluation with --n {n} needs {2 * n}")
    readings = read_generator_and_world(G, enc, images, n, seed)
    presets = _world_presets(ds.info)
    by_label = {}
    preset_names = [str(x) for x in ds.info.get("preset_names", ())]
    # A --cond preset or preset+state generator: each preset is one of its classes.
    if G.c_dim > 0 and preset_names and set(preset_names) <= set(getattr(G, "class_names", ())):
        by_label = label_readings(_read_by_label(G, enc, preset_names, max(1, n // 10), seed),
                                  readings.world.expression.numpy(), ds.params["preset"][:n], preset_names, presets)
    names = tuple(str(x) for x in ds.info.get("expression_names", ()))
    if sheets_dir is not None:
        from rig.world.sheets import write_preset_extremes, write_sheets

        write_sheets(G, sheets_dir, seed=seed)
        if presets:
            write_preset_extremes(Path(sheets_dir) / "presets.png", images[:n], ds.params["expression"][:n],
                                  readings.fake, readings.generated.expression.numpy(), presets)
    report = report_from_readings(readings, ds.params, names, presets)
    return dataclasses.replace(report, label_readings={f"preset:{k}": v for k, v in by_label.items()})


def _read_by_label(G, enc, preset_names: list[str], m: int, seed: int) -> dict:
    """preset name -> (m, E) encoder expression readings of ``G``'s images with that preset's label (the
    class of that name among ``G``'s ``class_names``), the same m latents for every label."""
    import torch

    out = {}
    for name in preset_names:
        c = torch.nn.functional.one_hot(torch.full((m,), G.class_names.index(name)), G.c_dim).to(torch.float32)
        out[name] = predict(enc, generate_uint8(G, m, seed + 1, labels=c)).expression.numpy()
    return out


def _world_presets(info: dict) -> dict:
    """name -> (E,) expression of each preset the world drew (dataset.json ``preset_names``), as the
    sampler resolved them on the world's face model."""
    wanted = [str(n) for n in info.get("preset_names", ())]
    if not wanted:
        return {}
    import torch

    from rig.face_model import load_face_model
    from rig.world.priors import preset_table

    table = preset_table(load_face_model(info.get("face_model", "default"), dtype=torch.float32))
    return {n: table[n][0] for n in wanted if n in table}
