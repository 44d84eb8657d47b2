"""rig's world-dataset format: sharded folders of PNG images plus one parameter file per shard.

Layout of a dataset folder::

    DIR/dataset.json                 format, resolution, shard size, the WorldConfig that drew it
    DIR/shard-00000/00000000.png     RGB uint8 images, named by their global index
    DIR/shard-00000/params.npz       every per-image parameter, stacked along axis 0 in file order

``params.npz`` holds plain numeric arrays only (read with ``rig.io.npy.read_npz``: sizes, dtypes and
byte counts checked before anything is allocated); its key ``index`` (n,) int64 names the images, and any other key (rig parameters, ``landmarks_2d`` (n, 68, 2) in pixels, lighting,
albedo / hair / background choices, ``seed``) has the same leading length. The params file is written
last and atomically, so a shard counts as finished exactly when it exists; an interrupted sampler
resumes by redoing the unfinished shards.

Every file of a dataset is treated as untrusted: a malformed ``dataset.json``, ``params.npz`` or
image is an ``InputError`` naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from rig.errors import CheckpointError, InputError
from rig.io.atomic import atomic_path, write_text_atomic
from rig.io.guard import DATA_ERRORS
from rig.io.npy import read_npz
from rig.io.tagged_json import read_tagged_json

DATASET_FORMAT = "rig.world_dataset"
DATASET_VERSION = 1
PARAMS_FILE = "params.npz"
INFO_FILE = "dataset.json"
MAX_RESOLUTION = 4096
MAX_PARAMS_BYTES = 1 << 30


def shard_path(root: str | os.PathLike, shard: int) -> Path:
    return Path(root) / f"shard-{shard:05d}"


def image_name(index: int) -> str:
    return f"{index:08d}.png"


def shard_done(root: str | os.PathLike, shard: int) -> bool:
    """True when the shard's parameter file exists (it is written last)."""
    return (shard_path(root, shard) / PARAMS_FILE).is_file()


def write_info(root: str | os.PathLike, info: dict[str, Any]) -> None:
    """Write ``dataset.json`` (adds the format tag); ``info`` needs at least 'resolution'."""
    if "resolution" not in info:
        raise InputError(f"{root}: dataset info needs a 'resolution'")
    data = dict(info, format=DATASET_FORMAT, format_version=DATASET_VERSION)
    write_text_atomic(Path(root) / INFO_FILE, json.dumps(data, indent=1))


def read_info(root: str | os.PathLike) -> dict[str, Any]:
    """``dataset.json`` of ``root``, checked: 'resolution' a power of two in 8..4096, 'expression_names' /
    'preset_names' (where present) lists of strings. ``InputError`` naming the file otherwise."""
    path = Path(root) / INFO_FILE
    info = read_tagged_json(path, DATASET_FORMAT, DATASET_VERSION, "rig world dataset description")
    res = info.get("resolution")
    if (not isinstance(res, int) or isinstance(res, bool) or not 8 <= res <= MAX_RESOLUTION or res & (res - 1)):
        raise InputError(f"{path}: resolution {repr(res)[:40]} is not a power of two in 8..{MAX_RESOLUTION}")
    for key in ("expression_names", "preset_names"):
        names = info.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(f"{path}: '{key}' is not a list of names")
    return info


def write_shard(root: str | os.PathLike, shard: int, images: np.ndarray, indices: np.ndarray,
                params: dict[str, np.ndarray]) -> Path:
    """Write one shard: ``images`` (n, H, W, 3) uint8, ``indices`` (n,) global image indices, ``params``
    arrays with leading length n. Images first, the params file last (the completion marker)."""
    images = np.asarray(images)
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != n or images.shape[3] != 3:
        raise InputError(f"shard {shard}: images must be (n={n}, H, W, 3) uint8, got {images.shape} {images.dtype}")
    for key, value in params.items():
        if key == "index" or np.asarray(value).shape[:1] != (n,):
            raise InputError(f"shard {shard}: parameter '{key}' must have leading length {n} (and not be named 'index')")
    folder = shard_path(root, shard)
    folder.mkdir(parents=True, exist_ok=True)
    for img, idx in zip(images, indices):
        with atomic_path(folder / image_name(int(idx))) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
    arrays = {k: np.ascontiguousarray(v) for k, v in params.items()}
    arrays["index"] = indices
    with atomic_path(folder / PARAMS_FILE, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return folder


def _read_params(path: Path) -> dict[str, np.ndarray]:
    """One shard's parameter table: name -> (n, ...) numeric array, 'index' (n,) non-negative integers.
    Non-finite values and ragged tables are ``InputError``s naming ``path``."""
    try:
        arrays = read_npz(path, max_bytes=MAX_PARAMS_BYTES)
    except CheckpointError as e:  # a dataset is not a model: same message, the input error type
        raise InputError(f"{e} (shard parameter file)") from None
    index = arrays.get("index")
    if index is None:
        raise InputError(f"{path}: shard parameter file has no 'index' array")
    if index.ndim != 1 or index.dtype.kind not in "iu" or (index.size and int(index.min()) < 0):
        raise InputError(f"{path}: 'index' must be (n,) non-negative integers, got {index.shape} {index.dtype}")
    n = len(index)
    for k, v in arrays.items():
        if v.shape[:1] != (n,):
            raise InputError(f"{path}: '{k}' has shape {v.shape}, expected leading length {n}")
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise InputError(f"{path}: '{k}' holds NaN or infinite values")
    return arrays


class WorldDataset(torch.utils.data.Dataset):
    """The finished shards of a world dataset as a torch Dataset.

    ``ds[i]`` is ``(image, params)``: image (3, S, S) uint8 tensor, params a dict of tensors (one row of
    every per-image array). ``ds.params`` holds the whole parameter table as numpy arrays (N, ...),
    ``ds.resolution`` the image side. ``keys`` limits which parameters are returned per item.
    """

    def __init__(self, root: str | os.PathLike, keys: list[str] | None = None):
        self.root = Path(root)
        self.info = read_info(self.root)
        self.resolution = int(self.info["resolution"])
        shards = sorted(p for p in self.root.glob("shard-*") if (p / PARAMS_FILE).is_file())
        if not shards:
            raise InputError(f"{self.root}: no finished shards (run `rig world sample` first)")
        tables = [_read_params(p / PARAMS_FILE) for p in shards]
        common = set(tables[0])
        for p, t in zip(shards, tables):
            if set(t) != common:
                raise InputError(f"{p / PARAMS_FILE}: parameter keys {sorted(t)} differ from the first shard's {sorted(common)}")
            for k in common:
                first = tables[0][k]
                if t[k].shape[1:] != first.shape[1:] or t[k].dtype.kind != first.dtype.kind:
                    raise InputError(f"{p / PARAMS_FILE}: '{k}' is {t[k].shape[1:]} {t[k].dtype} per image, "
                                     f"the first shard's is {first.shape[1:]} {first.dtype}")
        self.params: dict[str, np.ndarray] = {k: np.concatenate([t[k] for t in tables]) for k in sorted(common)}
        self.paths = [p / image_name(int(i)) for p, t in zip(shards, tables) for i in t["index"]]
        self.keys = sorted(common - {"index"}) if keys is None else list(keys)
        missing = set(self.keys) - common
        if missing:
            raise InputError(f"{self.root}: dataset has no parameter(s) {', '.join(sorted(missing))}")

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as (S, S, 3) uint8."""
        path = self.paths[i]
        try:
            with Image.open(path) as im:
                if im.size != (self.resolution, self.resolution):  # from the header, before decoding
                    raise InputError(f"{path}: image is {im.width}x{im.height}, dataset resolution is {self.resolution}")
                arr = np.asarray(im.convert("RGB"))
        except InputError:
            raise
        except DATA_ERRORS + (SyntaxError, Image.DecompressionBombError) as e:
            raise InputError(f"{path}: unreadable dataset image ({type(e).__name__}: {str(e)[:160]})") from None
        if arr.shape != (self.resolution, self.resolution, 3):
            raise InputError(f"{path}: image is {arr.shape[1]}x{arr.shape[0]}, dataset resolution is {self.resolution}")
        return arr

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        img = torch.from_numpy(self.image(i).copy()).permute(2, 0, 1)
        return img, {k: torch.from_numpy(np.array(self.params[k][i])) for k in self.keys}

    def load_images(self, progress: bool = True) -> torch.Tensor:
        """Every image as one (N, 3, S, S) uint8 tensor (for in-memory training)."""
        from tqdm import tqdm

        out = torch.empty((len(self), 3, self.resolution, self.resolution), dtype=torch.uint8)
        for i in tqdm(range(len(self)), desc=f"loading {self.root.name}", unit="img", disable=not progress, leave=False):
            out[i] = torch.from_numpy(self.image(i).copy()).permute(2, 0, 1)
        return out
