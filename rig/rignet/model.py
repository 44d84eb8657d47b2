"""The networks of the RigNet stage: the parameter reader ``F`` (W+ -> controls) and ``RigNet`` itself.

Shapes: W+ latents (B, L, w_dim) with L = ``num_ws``; controls (B, P) *standardised*
(``ControlSpace.normalise``). Both networks keep per-layer weights in stacked tensors and run all L
layers in one ``einsum``, so they cost microseconds beside the generator.

``RigNet`` follows StyleRig (Tewari et al. 2020): for each W+ layer a linear encoder
``w_dim -> code_dim`` and a decoder ``(code_dim + P) -> hidden -> w_dim`` whose output is added to the
layer: ``w'_l = w_l + D_l(E_l(w_l), p_l)``. Two designs:

* ``"absolute"`` (StyleRig's baseline): the decoder sees the absolute target ``p``; a zero edit only
  returns ``w`` as well as training taught it (the reconstruction loss).
* ``"delta"`` (the default): the decoder sees the requested change ``dp = target - source reading``
  and its output is ``D_l(e, dp) - D_l(e, 0)``, so a zero edit returns ``w`` exactly, by construction,
  and the edit is a smooth function of how much was asked.

Which layers an edit group may move (``RigNetConfig.layers``): layer l of the decoder only sees the
controls of the groups allowed on it (the others are held at the source's own values), so e.g. a yaw
request cannot reach the fine layers that carry skin and hair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rig.errors import InputError, ShapeError
from rig.rignet.controls import GROUPS, ControlSpace

DESIGNS = ("delta", "absolute")


def default_layers() -> dict[str, tuple[int, ...]]:
    # Measured on the default generator (benchmarks/rignet_layers.py, docs/rignet.md): a linear yaw or
    # pitch direction acts through layers 0-3 (4 and 8 px), the jaw and mouth through 0-5, the eyelids
    # spread thinly over 0-7; the 32-64 px layers (6-9) carry skin, hair and background.
    return {"pose": (0, 1, 2, 3), "jaw": (0, 1, 2, 3, 4, 5), "expression": (0, 1, 2, 3, 4, 5),
            "eyes": (0, 1, 2, 3, 4, 5, 6, 7)}


@dataclass(frozen=True)
class RigNetConfig:
    """Shape of a RigNet. ``layers``: group -> W+ layer indices it may move (None: the measured default,
    which names layers by resolution, so it holds for any generator: W+ layer 2k-2 and 2k-1 are the
    2^k px ones whatever the output size; layers the generator lacks are dropped)."""

    code_dim: int = 32
    hidden: int = 256
    design: str = "delta"
    layers: dict | None = None

    def resolved(self, num_ws: int) -> "RigNetConfig":
        """This config with ``layers`` spelled out for a generator of ``num_ws`` W+ layers."""
        if self.layers is not None:
            return self
        layers = {g: tuple(i for i in v if i < num_ws) for g, v in default_layers().items()}
        return RigNetConfig(self.code_dim, self.hidden, self.design, layers)

    def validate(self, num_ws: int) -> "RigNetConfig":
        if self.design not in DESIGNS:
            raise InputError(f"RigNet design must be one of {DESIGNS}, got {self.design!r}")
        if self.code_dim < 1 or self.hidden < 1:
            raise InputError("RigNet code_dim and hidden must be positive")
        for g, layers in (self.layers or {}).items():
            if g not in GROUPS:
                raise InputError(f"RigNet layers: unknown group '{g}' (groups: {', '.join(GROUPS)})")
            if not layers or any(not 0 <= int(i) < num_ws for i in layers):
                raise InputError(f"RigNet layers: group '{g}' names layers {tuple(layers)} outside 0..{num_ws - 1}")
        return self

    def to_json(self) -> dict:
        d = asdict(self)
        d["layers"] = None if self.layers is None else {g: [int(i) for i in v] for g, v in self.layers.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RigNetConfig":
        try:
            layers = d["layers"]
            return cls(int(d["code_dim"]), int(d["hidden"]), str(d["design"]),
                       None if layers is None else {str(g): tuple(int(i) for i in v) for g, v in layers.items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"malformed RigNet config ({e})") from None


def layer_control_mask(space: ControlSpace, cfg: RigNetConfig, num_ws: int) -> torch.Tensor:
    """(L, P) float: 1 where layer l may be moved by control p (active controls of an allowed group)."""
    mask = torch.zeros(num_ws, space.size)
    for g in GROUPS:
        idx = torch.from_numpy(space.group_indices(g))
        if not len(idx):
            continue
        layers = cfg.resolved(num_ws).layers.get(g, tuple(range(num_ws)))
        for l in layers:
            mask[int(l), idx] = 1
    return mask


class _LayerLinear(nn.Module):
    """L independent linear maps (in -> out), applied to (B, L, in)."""

    def __init__(self, L: int, n_in: int, n_out: int, init_scale: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(L, n_in, n_out) * (init_scale / n_in ** 0.5))
        self.bias = nn.Parameter(torch.zeros(L, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bli,lio->blo", x, self.weight) + self.bias


class ParamReader(nn.Module):
    """``F``: W+ (B, L, w_dim) -> standardised controls (B, P). Per-layer projections to 64 values,
    then a 2-hidden-layer MLP. ``w_avg`` (w_dim,) centres the input."""

    def __init__(self, num_ws: int, w_dim: int, n_controls: int, hidden: int = 512, per_layer: int = 64):
        super().__init__()
        self.num_ws, self.w_dim, self.n_controls = num_ws, w_dim, n_controls
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.proj = _LayerLinear(num_ws, w_dim, per_layer)
        self.mlp = nn.Sequential(nn.Linear(num_ws * per_layer, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_controls))

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ShapeError(f"ParamReader: expected (B, {self.num_ws}, {self.w_dim}) W+, got {tuple(ws.shape)}")
        h = F.leaky_relu(self.proj(ws - self.w_avg), 0.2)
        return self.mlp(h.flatten(1))


class RigNet(nn.Module):
    """W+ (B, L, w_dim), source and target controls (B, P) standardised -> edited W+ (B, L, w_dim).

    Buffers: ``w_avg`` (w_dim,) centres the encoders' input; ``layer_mask`` (L, P) which controls
    reach which layer (``layer_control_mask``); ``active`` (P,) the controls that are steered at all.
    """

    def __init__(self, num_ws: int, w_dim: int, space: ControlSpace, cfg: RigNetConfig = RigNetConfig()):
        super().__init__()
        cfg = cfg.resolved(num_ws)
        self.cfg = cfg.validate(num_ws)
        self.num_ws, self.w_dim, self.n_controls = num_ws, w_dim, space.size
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("layer_mask", layer_control_mask(space, cfg, num_ws))
        self.register_buffer("active", space.active.float())
        self.encoder = _LayerLinear(num_ws, w_dim, cfg.code_dim)
        self.dec1 = _LayerLinear(num_ws, cfg.code_dim + space.size, cfg.hidden)
        self.dec2 = _LayerLinear(num_ws, cfg.hidden, w_dim, init_scale=0.1)
        # Layers no group may move get no decoder output at all.
        self.register_buffer("movable", (self.layer_mask.sum(1) > 0).float())

    def _decode(self, code: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.dec1(torch.cat([code, p], -1)), 0.2)
        return self.dec2(h)

    def forward(self, ws: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ShapeError(f"RigNet: expected (B, {self.num_ws}, {self.w_dim}) W+, got {tuple(ws.shape)}")
        if source.shape != (ws.shape[0], self.n_controls) or target.shape != source.shape:
            raise ShapeError(f"RigNet: expected source and target controls ({ws.shape[0]}, {self.n_controls}), "
                             f"got {tuple(source.shape)} and {tuple(target.shape)}")
        code = self.encoder(ws - self.w_avg)
        # Per layer: the allowed groups' request; everything else stays at the source's reading.
        delta = ((target - source) * self.active)[:, None, :] * self.layer_mask
        if self.cfg.design == "delta":
            both = self._decode(torch.cat([code, code]), torch.cat([delta, torch.zeros_like(delta)]))
            out = both[:len(ws)] - both[len(ws):]
        else:
            out = self._decode(code, (source * self.active)[:, None, :] + delta)
        return ws + out * self.movable[None, :, None]


def parse_layers(spec: str) -> dict[str, tuple[int, ...]]:
    """``"pose=0-3,jaw=0-5,eyes=2,4,6"`` -> {"pose": (0, 1, 2, 3), "jaw": (0, ..., 5), "eyes": (2, 4, 6)}."""
    out: dict[str, list[int]] = {}
    group = None
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            continue
        if "=" in part:
            group, part = part.split("=", 1)
            if group not in GROUPS:
                raise InputError(f"--layers {spec!r}: unknown group '{group}' (groups: {', '.join(GROUPS)})")
            out[group] = []
        if group is None:
            raise InputError(f"--layers {spec!r}: expected GROUP=LAYERS, e.g. pose=0-3")
        lo, dash, hi = part.partition("-")
        try:
            out[group].extend(range(int(lo), int(hi) + 1) if dash else [int(lo)])
        except ValueError:
            raise InputError(f"--layers {spec!r}: '{part}' is not a layer index or range") from None
    return {g: tuple(sorted(set(v))) for g, v in out.items()}
