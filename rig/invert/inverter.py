"""The inverter: a CNN trained for one generator that maps an aligned crop to its W+ latent in one pass.

``Inverter(image (B, 3, S, S) in [-1, 1]) -> ws (B, num_ws, w_dim)``. Four stride-2 stages (3x3
convolutions, GroupNorm, LeakyReLU) bring the crop to a 4 x 4 map (the input is resized to
``input_size`` first); a hidden layer reads the flattened map, and two linear heads give a shared
``w`` and a per-layer offset. Outputs are in units of the generator's W statistics:
``ws = w_mean + w_std * (base + offset_l)``, so an untrained head starts at the mean face. The W
statistics are measured on the generator's mapping at construction and kept as buffers.

The file (``rig.inverter/1``, safetensors) holds the weights (large matrices as float16), the config, the generator's identity
(``rig.stylegan2.identity``; the inverter is refused on any other generator, accepted with a notice on
a fine-tuned copy) and its training record. Nothing in it is executed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rig.errors import CheckpointError, InputError, ShapeError
from rig.paths import default_inverter_path, require_shipped

INVERTER_FORMAT = "rig.inverter/1"


@dataclass(frozen=True)
class InverterConfig:
    """num_ws, w_dim: the generator's W+ shape. input_size: crop side the CNN sees (pixels, divisible
    by 16). widths: channels of the four stride-2 stages. hidden: units of the layer over the last map."""

    num_ws: int
    w_dim: int
    input_size: int = 64
    widths: tuple[int, ...] = (48, 96, 192, 256)
    hidden: int = 512

    def validate(self) -> "InverterConfig":
        if not (1 <= self.num_ws <= 64 and 1 <= self.w_dim <= 4096):
            raise InputError(f"inverter: W+ shape ({self.num_ws}, {self.w_dim}) out of range")
        if self.input_size % (1 << len(self.widths)) or self.input_size > 1024:
            raise InputError(f"inverter: input_size {self.input_size} must be divisible by 2^{len(self.widths)}")
        return self


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    groups = 8 if c_out % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, stride=2, padding=1), nn.GroupNorm(groups, c_out), nn.LeakyReLU(0.2),
    )


class Inverter(nn.Module):
    """Aligned crops (B, 3, S, S) in [-1, 1] -> W+ (B, num_ws, w_dim)."""

    def __init__(self, cfg: InverterConfig):
        super().__init__()
        self.cfg = cfg.validate()
        chans = (3,) + tuple(cfg.widths)
        self.backbone = nn.Sequential(*[_stage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        side = cfg.input_size >> len(cfg.widths)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(cfg.widths[-1] * side * side, cfg.hidden), nn.LeakyReLU(0.2))
        self.base = nn.Linear(cfg.hidden, cfg.w_dim)
        self.offsets = nn.Linear(cfg.hidden, cfg.num_ws * cfg.w_dim)
        for head in (self.base, self.offsets):
            nn.init.zeros_(head.bias)
            head.weight.data.mul_(0.1)
        self.register_buffer("w_mean", torch.zeros(cfg.w_dim))
        self.register_buffer("w_std", torch.ones(cfg.w_dim))

    @torch.no_grad()
    def set_w_statistics(self, G, n: int = 10000, seed: int = 0) -> None:
        """Mean and per-dimension std of ``G.mapping``'s w over ``n`` draws (labels by the class prior)."""
        from rig.stylegan2.generate import sample_labels

        g = torch.Generator().manual_seed(seed)
        dev = self.w_mean.device
        z = torch.randn(n, G.z_dim, generator=g).to(dev)
        c = sample_labels(G, n, g)
        w = G.mapping(z, None if c is None else c.to(dev))[:, 0]
        self.w_mean.copy_(w.mean(0))
        self.w_std.copy_(w.std(0).clamp_min(1e-6))

    def standardise(self, ws: torch.Tensor) -> torch.Tensor:
        """W+ -> the head's units ((ws - w_mean) / w_std)."""
        return (ws - self.w_mean) / self.w_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ShapeError(f"Inverter: expected (B, 3, S, S) images, got {tuple(images.shape)}")
        x = images.float()
        if x.shape[-1] != self.cfg.input_size:
            x = F.interpolate(x, size=(self.cfg.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        h = self.hidden(self.backbone(x))
        z = self.base(h)[:, None, :] + self.offsets(h).view(-1, self.cfg.num_ws, self.cfg.w_dim)
        return self.w_mean + self.w_std * z


def save_inverter(path: str | os.PathLike, net: Inverter, generator_identity: str, training: dict | None = None,
                  quality: dict | None = None, half: bool = True) -> None:
    """Write the inverter file atomically (see the module docstring). ``half``: weight matrices in
    float16 (half the file; loading brings them back to float32), the W statistics always float32."""
    from safetensors.torch import save_file

    from rig.io.atomic import atomic_path

    meta = {"format": INVERTER_FORMAT, "config": json.dumps(asdict(net.cfg)),
            "generator_identity": generator_identity, "training": json.dumps(training or {}),
            "quality": json.dumps(quality or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() and v.numel() > 4096 else v for k, v in state.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(state, str(tmp), metadata=meta)


@dataclass
class InverterBundle:
    """A loaded inverter file."""

    net: Inverter
    generator_identity: str
    meta: dict
    source: str

    def check_generator(self, G) -> list[str]:
        """Refuse an inverter of another generator; notices for a fine-tuned copy of its own."""
        from rig.stylegan2.identity import generator_identity

        ident = generator_identity(G)
        if ident == self.generator_identity:
            return []
        if getattr(G, "parent_identity", None) == self.generator_identity:
            return [f"{self.source}: trained for generator {self.generator_identity}, used on its fine-tuned copy {ident}"]
        raise InputError(f"{self.source}: this inverter belongs to another generator "
                         f"(trained for {self.generator_identity}, the network given is {ident})")


def load_inverter(path: str | os.PathLike = "default", device: str | torch.device = "cpu") -> InverterBundle:
    """Read an inverter file (``"default"``: the shipped one for the default generator), in eval mode."""
    from rig.io.safetensors_file import read_safetensors

    if str(path) == "default":
        path = require_shipped(default_inverter_path(), "the default inverter", "pass --inverter PATH to another inverter")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: inverter file not found")
    tensors, meta = read_safetensors(path)
    if meta.get("format") != INVERTER_FORMAT:
        raise CheckpointError(f"{path}: not a rig inverter file (format {meta.get('format')!r})")
    try:
        raw = json.loads(meta["config"])
        cfg = InverterConfig(**dict(raw, widths=tuple(raw["widths"])))
        net = Inverter(cfg)
        net.load_state_dict(tensors, strict=True)
        training = json.loads(meta.get("training", "{}"))
        quality = json.loads(meta.get("quality", "{}"))
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as e:
        raise CheckpointError(f"{path}: inverter config or weights unreadable ({str(e).splitlines()[0]})") from None
    return InverterBundle(net.to(device).eval(), str(meta.get("generator_identity", "")),
                          {"training": training, "quality": quality}, str(path))
