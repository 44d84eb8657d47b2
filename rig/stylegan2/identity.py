"""A generator's identity: a hash of its weights, the same whichever file format holds them.

RigNet files, face files and label sets record the identity of the generator they were made for, so
a RigNet trained for one network is refused on another. The hash runs over the loaded module's state
dict (NVIDIA's parameter names, float32 little-endian bytes, sorted by name), so ``rig convert``
between NVIDIA ``.pkl``, rosinality ``.pt`` and rig ``.safetensors`` keeps it.
"""

from __future__ import annotations

import hashlib

import torch

IDENTITY_CHARS = 16  # hex digits kept: 64 bits, plenty to tell networks apart


def generator_identity(G: torch.nn.Module) -> str:
    """16 hex digits identifying ``G``'s weights and buffers (cached on the module; weights are frozen
    at load time, so a fine-tuned copy must call ``forget_identity`` after changing them)."""
    cached = getattr(G, "_rig_identity", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode("utf-8") + b"\0")
        h.update(str(tuple(t.shape)).encode("ascii"))
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    ident = h.hexdigest()[:IDENTITY_CHARS]
    object.__setattr__(G, "_rig_identity", ident)
    return ident


def forget_identity(G: torch.nn.Module) -> None:
    """Drop the cached identity (after changing ``G``'s weights)."""
    if hasattr(G, "_rig_identity"):
        object.__delattr__(G, "_rig_identity")
