"""Hair for the default world: a shell grown from the face model's scalp region.

The scalp triangles (region 'hair') are copied and pushed out along the posed vertex normals by a
style's thickness; the push fades to zero at the region's border (by mesh hops from the border) so
the shell meets the skin without a step. ``volume`` adds extra lift towards the crown and back.
The shell is drawn with per-vertex colour noise for a little strand-like variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rig.errors import InputError

# name -> (thickness at the crown in metres, extra lift towards the top/back in metres)
HAIR_STYLES = {"bald": (0.0, 0.0), "buzz": (0.003, 0.0), "short": (0.008, 0.004), "volume": (0.014, 0.014)}

# Linear-RGB hair colours (black, dark brown, brown, auburn, blonde, grey).
HAIR_COLOURS = np.array([
    [0.012, 0.010, 0.009], [0.040, 0.024, 0.014], [0.10, 0.055, 0.028],
    [0.20, 0.07, 0.03], [0.42, 0.30, 0.15], [0.30, 0.29, 0.28],
], dtype=np.float32)


@dataclass(frozen=True)
class ScalpShell:
    """Precomputed scalp geometry of one face model.

    vertex_ids: (K,) int64 model vertices of the scalp region.
    faces: (Fh, 3) int64 scalp triangles, indices into ``vertex_ids``.
    fade: (K,) float32 in [0, 1]: 0 on the region border, 1 two hops or more inside.
    height: (K,) float32 in [0, 1]: how far up/back the vertex sits (for the 'volume' lift).
    """

    vertex_ids: np.ndarray
    faces: np.ndarray
    fade: np.ndarray
    height: np.ndarray

    @classmethod
    def from_model_data(cls, data) -> "ScalpShell":
        """Build from a ``FaceModelData`` with region labels including 'hair'."""
        if data.vertex_regions is None or "hair" not in data.region_names:
            raise InputError(f"{data.name}: face model has no 'hair' region; the world needs one for hair")
        hair = data.vertex_regions == data.region_names.index("hair")
        tri_in = hair[data.faces].all(axis=1)
        if not tri_in.any():
            raise InputError(f"{data.name}: the 'hair' region has no whole triangles")
        ids = np.flatnonzero(hair)
        remap = -np.ones(len(hair), np.int64)
        remap[ids] = np.arange(len(ids))
        faces = remap[data.faces[tri_in]]
        # Hops from the border: border = scalp vertices sharing a triangle with a non-scalp vertex.
        touches_other = np.zeros(len(hair), bool)
        mixed = data.faces[hair[data.faces].any(axis=1) & ~tri_in]
        touches_other[mixed.ravel()] = True
        hops = np.where(touches_other[ids], 0, -1)
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        for step in range(1, 8):
            frontier = hops == step - 1
            nxt = np.unique(np.concatenate([edges[frontier[edges[:, 0]], 1], edges[frontier[edges[:, 1]], 0]]))
            new = nxt[hops[nxt] < 0]
            hops[new] = step
        hops[hops < 0] = 8
        fade = np.clip(hops / 2.0, 0, 1).astype(np.float32)
        v = data.v_template[ids]
        y = (v[:, 1] - v[:, 1].min()) / max(np.ptp(v[:, 1]), 1e-9)
        back = (v[:, 2].max() - v[:, 2]) / max(np.ptp(v[:, 2]), 1e-9)
        height = np.clip(0.6 * y + 0.4 * back, 0, 1).astype(np.float32)
        return cls(ids, faces, fade, height)

    def grow(self, vertices: torch.Tensor, normals: torch.Tensor, style: str) -> torch.Tensor | None:
        """Shell vertices (B, K, 3) for posed ``vertices`` / unit ``normals`` (B, V, 3), or None for 'bald'."""
        thick, lift = HAIR_STYLES[style]
        if thick == 0 and lift == 0:
            return None
        offset = torch.as_tensor(self.fade * (thick + lift * self.height), dtype=vertices.dtype)
        ids = torch.as_tensor(self.vertex_ids)
        return vertices[:, ids] + normals[:, ids] * offset[None, :, None]
