"""``sample_world``: write a sharded world dataset (``rig world sample``), resumably.

Image ``i`` of a dataset with seed ``K`` is a pure function of (K, i, WorldConfig, face model), so
shards can be redone in any order; finished shards (their ``params.npz`` exists) are skipped. Each
shard's parameter table holds the ``rig.world.priors.draw_params`` keys plus ``landmarks_2d``
(n, 68, 2) crop pixels and ``crop_frame`` (n, 3, 2) (crop centre and half-axes in render pixels).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from rig.errors import InputError
from rig.world import dataset as wd
from rig.world.config import WorldConfig
from rig.world.priors import draw_params, preset_table


def _batch_that_fits(cfg: WorldConfig, batch: int, memory_budget: int | None) -> int:
    """``batch``, or fewer images per render so one batch fits in ``memory_budget`` bytes; ``InputError``
    naming the size when not even one image fits."""
    from rig.limits import available_memory_bytes
    from rig.world.render import render_bytes_per_image, render_side

    budget = available_memory_bytes() if memory_budget is None else int(memory_budget)
    per_image = render_bytes_per_image(cfg)
    if per_image > budget:
        fits = [s for s in (2 ** k for k in range(3, 13)) if render_bytes_per_image(replace(cfg, resolution=s)) <= budget]
        raise InputError(f"--size {cfg.resolution}: one image renders at {render_side(cfg)} px and needs about "
                         f"{per_image / 2**30:.1f} GiB of memory, {budget / 2**30:.1f} GiB is available"
                         + (f"; choose --size {fits[-1]} or less" if fits else ""))
    return max(1, min(batch, budget // per_image))


def sample_world(out_dir: str | os.PathLike, n: int, seed: int, cfg: WorldConfig = WorldConfig(),
                 face_model: str = "default", shard_size: int = 256, batch: int = 16, progress: bool = True,
                 memory_budget: int | None = None) -> int:
    """Render ``n`` images into ``out_dir``; return how many were rendered now (0 if all shards were done).

    Refuses a folder that holds a dataset drawn with a different seed, size or config. Before anything
    is written, the render's memory (``rig.world.render.render_bytes_per_image``) is checked against
    ``memory_budget`` bytes (default: the memory available now, ``rig.limits.available_memory_bytes``):
    batches shrink to fit, and a size of which not even one image fits is an ``InputError``.
    """
    import torch
    from tqdm import tqdm

    from rig.face_model import load_face_model
    from rig.face_model.presets import preset_names
    from rig.world.render import WorldRenderer

    cfg = cfg.validate()
    if n < 1 or shard_size < 1 or batch < 1:
        raise InputError("world sample: n, shard_size and batch must be positive")
    batch = _batch_that_fits(cfg, batch, memory_budget)
    model = load_face_model(face_model, dtype=torch.float32)
    info = {"resolution": cfg.resolution, "n_images": n, "seed": seed, "shard_size": shard_size,
            "face_model": str(face_model), "world_config": cfg.to_json(),
            "expression_names": list(model.expression_names),
            "preset_names": sorted(n for n in preset_names() if n != "neutral") if cfg.preset_prob > 0 else []}
    out = Path(out_dir)
    if (out / wd.INFO_FILE).exists():
        old = wd.read_info(out)
        for key in ("resolution", "n_images", "seed", "shard_size", "face_model", "world_config"):
            if old.get(key) != json.loads(json.dumps(info[key])):  # compare in JSON form (tuples -> lists)
                raise InputError(f"{out}: holds a dataset with a different {key} ({old.get(key)!r}); choose another folder")
        if "expression_names" not in old or "preset_names" not in old:
            wd.write_info(out, dict(old, expression_names=info["expression_names"], preset_names=info["preset_names"]))
    else:
        wd.write_info(out, info)
    n_shards = math.ceil(n / shard_size)
    todo = [s for s in range(n_shards) if not wd.shard_done(out, s)]
    if not todo:
        return 0
    renderer = WorldRenderer(model, cfg)
    presets = preset_table(model) if cfg.preset_prob > 0 and model.has_landmarks else None
    albedo_names = tuple(model.data.albedo_names) if renderer.vertex_albedo is not None else ()
    total = sum(min(shard_size, n - s * shard_size) for s in todo)
    done = 0
    with tqdm(total=total, unit="img", desc=f"world -> {out.name}", disable=not progress) as bar:
        for s in todo:
            indices = np.arange(s * shard_size, min(n, (s + 1) * shard_size))
            rows = [draw_params(cfg, seed, int(i), model.n_shape, model.expression_names, presets, albedo_names) for i in indices]
            images, lmks, frames = [], [], []
            for b in range(0, len(rows), batch):
                img, lmk, fr = renderer.render(rows[b:b + batch])
                images.append(img)
                lmks.append(lmk)
                frames.append(fr)
                bar.update(len(img))
            table = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
            table["landmarks_2d"] = np.concatenate(lmks)
            table["crop_frame"] = np.concatenate(frames)
            wd.write_shard(out, s, np.concatenate(images), indices, table)
            done += len(indices)
    return done
