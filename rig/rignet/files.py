"""The RigNet file: RigNet + the parameter reader ``F`` + everything needed to use them, in one safetensors.

Tensors ``rignet.<state-dict name>`` and ``reader.<state-dict name>``; JSON header entries:

* ``format`` = ``rig.rignet/1``;
* ``generator_identity`` (``rig.stylegan2.identity``), ``generator_network`` (how it was named),
  ``num_ws`` / ``w_dim``: a RigNet is refused on any other generator;
* ``control_space`` (``ControlSpace.to_json``), ``rignet_config``, ``labeler``;
* ``calibration`` (optional, ``rig.rignet.calibration``): what the labeler reads for rig parameters
  given in face-model units, so ``--expr smile`` or ``--unit`` can be turned into targets;
* ``training`` (config, label set, elapsed time) and ``quality`` (measured numbers, optional).

Nothing in the file is executed; the networks are rebuilt from the config and loaded strictly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rig.errors import CheckpointError, InputError
from rig.io.atomic import write_bytes_atomic
from rig.rignet.controls import ControlSpace
from rig.rignet.model import ParamReader, RigNet, RigNetConfig

RIGNET_FORMAT = "rig.rignet/1"


@dataclass
class RigNetBundle:
    """A loaded RigNet file."""

    rignet: RigNet
    reader: ParamReader
    space: ControlSpace
    generator_identity: str
    labeler: str
    calibration: dict | None
    meta: dict
    source: str

    def check_generator(self, G) -> list[str]:
        """Raise ``InputError`` unless this RigNet belongs to ``G`` (or to the generator ``G`` was
        fine-tuned from, which is allowed with a notice: the returned lines)."""
        from rig.stylegan2.identity import generator_identity

        ident = generator_identity(G)
        if ident == self.generator_identity:
            return []
        parent = getattr(G, "parent_identity", None)
        if parent == self.generator_identity:
            return [f"{self.source}: trained for generator {parent}, applied to its fine-tuned copy {ident}"]
        raise InputError(f"{self.source}: this RigNet belongs to another generator "
                         f"(trained for {self.generator_identity}, the network given is {ident})")


def save_rignet(path: str | os.PathLike, net: RigNet, reader: ParamReader, space: ControlSpace, G, label_info: dict,
                train_cfg=None, calibration: dict | None = None, quality: dict | None = None,
                elapsed_s: float | None = None) -> None:
    """Write a RigNet file atomically (see the module docstring)."""
    from safetensors.torch import save

    from rig.stylegan2.identity import generator_identity

    tensors = {f"rignet.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors.update({f"reader.{k}": v.detach().cpu().contiguous() for k, v in reader.state_dict().items()})
    meta = {"format": RIGNET_FORMAT, "generator_identity": generator_identity(G),
            "generator_network": str(label_info.get("network", "")), "num_ws": str(G.num_ws), "w_dim": str(G.w_dim),
            "control_space": json.dumps(space.to_json()), "rignet_config": json.dumps(net.cfg.to_json()),
            "reader_config": json.dumps({"hidden": reader.mlp[0].out_features, "per_layer": reader.proj.weight.shape[2]}),
            "labeler": str(label_info.get("labeler", "encoder")),
            "training": json.dumps({"config": None if train_cfg is None else train_cfg.to_json(),
                                    "labels": label_info, "elapsed_s": elapsed_s})}
    if calibration is not None:
        meta["calibration"] = json.dumps(calibration)
    if quality is not None:
        meta["quality"] = json.dumps(quality)
    write_bytes_atomic(path, save(tensors, metadata=meta))


def resolve_rignet_path(spec: str | os.PathLike) -> Path:
    if str(spec) == "default":
        from rig.paths import default_rignet_path, require_shipped

        return require_shipped(default_rignet_path(), "the default RigNet", "pass --rignet PATH to another RigNet")
    return Path(spec)


def _json(meta: dict, key: str, source: str, required: bool = True):
    if key not in meta:
        if required:
            raise CheckpointError(f"{source}: RigNet header lacks '{key}'")
        return None
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{source}: corrupt '{key}' header ({e})") from None


def load_rignet(spec: str | os.PathLike, device: str | torch.device = "cpu") -> RigNetBundle:
    """Read a RigNet file (``"default"``: the shipped one). Networks come back in eval mode, frozen."""
    from rig.io.safetensors_file import read_safetensors

    path = resolve_rignet_path(spec)
    source = str(path)
    state, meta = read_safetensors(path)
    if meta.get("format") != RIGNET_FORMAT:
        raise CheckpointError(f"{source}: not a rig RigNet file (format {meta.get('format')!r})")
    try:
        space = ControlSpace.from_json(_json(meta, "control_space", source), source)
        cfg = RigNetConfig.from_json(_json(meta, "rignet_config", source))
        rcfg = _json(meta, "reader_config", source)
        num_ws, w_dim = int(meta["num_ws"]), int(meta["w_dim"])
        if not (1 <= num_ws <= 64 and 1 <= w_dim <= 4096):
            raise CheckpointError(f"{source}: implausible latent shape ({num_ws}, {w_dim})")
        net = RigNet(num_ws, w_dim, space, cfg)
        reader = ParamReader(num_ws, w_dim, space.size, hidden=int(rcfg["hidden"]), per_layer=int(rcfg["per_layer"]))
    except (KeyError, TypeError, ValueError, InputError) as e:
        raise CheckpointError(f"{source}: malformed RigNet header ({e})") from None
    for prefix, module in (("rignet.", net), ("reader.", reader)):
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sub, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{source}: weights do not fit the stored config ({str(e).splitlines()[0]})") from None
        if not all(torch.isfinite(t).all() for t in sub.values()):
            raise CheckpointError(f"{source}: non-finite weights in the {prefix[:-1]} network")
    net.eval().requires_grad_(False).to(device)
    reader.eval().requires_grad_(False).to(device)
    return RigNetBundle(net, reader, space, str(meta.get("generator_identity", "")), str(meta.get("labeler", "encoder")),
                        _json(meta, "calibration", source, required=False), meta, source)
