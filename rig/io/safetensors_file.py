"""Reading a ``.safetensors`` file whole, with every parse failure turned into a ``CheckpointError``."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch

from rig.errors import CheckpointError


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a safetensors file; ``CheckpointError`` naming the file otherwise."""
    from safetensors.torch import load

    path = Path(path)
    label = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{label}: file not found") from None
    except OSError as e:
        raise CheckpointError(f"{label}: cannot be read ({e})") from None
    try:
        (hlen,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + hlen])
        meta = header.get("__metadata__") or {}
        tensors = load(data)
    except Exception as e:  # noqa: BLE001 - any parse failure means a bad file
        raise CheckpointError(f"{label}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    return tensors, dict(meta)
