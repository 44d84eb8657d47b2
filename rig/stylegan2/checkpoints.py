"""Load and save StyleGAN2 networks in every format rig accepts, and convert between them.

Formats (picked by file suffix):

* ``.pkl`` — NVIDIA stylegan2-ada-pytorch snapshots (``G``, ``D``, ``G_ema``), read by
  ``nvidia_pickle.read_snapshot`` without executing anything; rig modules are built from each
  network's ``_init_kwargs`` and loaded from its recorded parameters and buffers.
* ``.pt`` / ``.pth`` — rosinality checkpoints (``g_ema``, ``latent_avg``), ``torch.load(weights_only=True)``.
* ``.safetensors`` — rig's own: tensors named ``<net>.<state-dict name>`` (``G_ema.mapping.w_avg``)
  and a JSON header entry ``rig_networks`` = ``{net: {"class": ..., "config": {...}}}``.

``network = "default"`` means ``rig/checkpoints/default/generator.safetensors`` (package data).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rig.errors import CheckpointError, InputError
from rig.io.atomic import write_bytes_atomic
from rig.io.guard import guarded
from rig.io.pickle_vm import short_repr
from rig.io.safetensors_file import read_safetensors
from rig.stylegan2.config import DiscriminatorConfig, GeneratorConfig
from rig.stylegan2.discriminator import Discriminator
from rig.stylegan2.load_checks import build_checked, check_finite, check_layout, probe_generator
from rig.stylegan2.networks import Generator
from rig.stylegan2.nvidia_pickle import PersistentRecord, read_snapshot, record_state_dict
from rig.stylegan2 import rosinality

RIG_FORMAT = "rig.stylegan2/1"
NETWORK_NAMES = ("G_ema", "G", "D")
_GEN_ARG_ORDER = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_DIS_ARG_ORDER = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                  "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")


@dataclass
class NetworkSet:
    """The networks found in one file (each None when absent), built as rig modules in eval mode."""

    source: str
    G_ema: Generator | None = None
    G: Generator | None = None
    D: Discriminator | None = None
    training_set_kwargs: dict | None = None
    labels: dict | None = None  # class-conditional networks trained by rig: {"class_names": [...], "class_prior": [...]}
    parent_identity: str | None = None  # a fine-tuned copy: ``generator_identity`` of the network it was tuned from
    notes: list[str] = field(default_factory=list)

    def items(self) -> list[tuple[str, nn.Module]]:
        return [(n, getattr(self, n)) for n in NETWORK_NAMES if getattr(self, n) is not None]


def default_network_path() -> Path:
    """``rig/checkpoints/default/generator.safetensors`` (trained by ``rig train generator``)."""
    from rig.paths import default_generator_path

    return default_generator_path()


# ------------------------------------------------------------------------------------ building

def _kwargs_from_record(record: PersistentRecord, order: tuple[str, ...], source: str) -> dict:
    args = record.init_args()
    if len(args) > len(order):
        raise CheckpointError(f"{source}: {record.class_name} has {len(args)} positional constructor arguments")
    kwargs = dict(zip(order, args))
    kwargs.update(record.init_kwargs())
    return kwargs


def _load_checked(module: nn.Module, tensors: dict[str, torch.Tensor], classes: dict[str, str] | None,
                  source: str, what: str) -> None:
    """Load ``tensors`` into an existing ``module`` requiring identical names and shapes, finite values."""
    check_layout(module.state_dict(), tensors, source, what)
    check_finite(tensors, source, what)
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            value.copy_(tensors[name].to(dtype=value.dtype))


def _generator(config: GeneratorConfig, tensors: dict[str, torch.Tensor], classes: dict[str, str] | None,
               source: str, what: str) -> Generator:
    net = build_checked(lambda: Generator(config), tensors, classes, source, what)
    probe_generator(net, source, what)
    return net.eval().requires_grad_(False)


def generator_from_record(record: PersistentRecord, source: str) -> Generator:
    if record.class_name != "Generator":
        raise CheckpointError(f"{source}: expected a Generator, found {record.class_name}")
    config = GeneratorConfig.from_nvidia_kwargs(_kwargs_from_record(record, _GEN_ARG_ORDER, source), source)
    tensors, classes = record_state_dict(record)
    return _generator(config, tensors, classes, source, "G")


def discriminator_from_record(record: PersistentRecord, source: str) -> Discriminator:
    if record.class_name != "Discriminator":
        raise CheckpointError(f"{source}: expected a Discriminator, found {record.class_name}")
    config = DiscriminatorConfig.from_nvidia_kwargs(_kwargs_from_record(record, _DIS_ARG_ORDER, source), source)
    tensors, classes = record_state_dict(record)
    net = build_checked(lambda: Discriminator(config), tensors, classes, source, "D")
    return net.eval().requires_grad_(False)


@guarded
def load_nvidia_pkl(path: str | os.PathLike) -> NetworkSet:
    """Build G, D and G_ema from an NVIDIA snapshot (never executing code from it)."""
    snap = read_snapshot(path)
    out = NetworkSet(source=snap.source, training_set_kwargs=snap.training_set_kwargs)
    if snap.G_ema is not None:
        out.G_ema = generator_from_record(snap.G_ema, f"{snap.source} [G_ema]")
    if snap.G is not None:
        out.G = generator_from_record(snap.G, f"{snap.source} [G]")
    if snap.D is not None:
        out.D = discriminator_from_record(snap.D, f"{snap.source} [D]")
    if snap.augment_pipe is not None:
        out.notes.append(f"augment_pipe ({snap.augment_pipe.class_name}) is not used by rig and was skipped")
    return out


# ------------------------------------------------------------------------------------ rig format

def _network_entry(net: nn.Module) -> dict:
    if isinstance(net, Generator):
        return {"class": "Generator", "config": net.config.to_dict()}
    if isinstance(net, Discriminator):
        return {"class": "Discriminator", "config": net.config.to_dict()}
    raise InputError(f"cannot save a {type(net).__name__}; expected a rig Generator or Discriminator")


def save_networks(path: str | os.PathLike, networks: dict[str, nn.Module], extra: dict | None = None) -> None:
    """Write networks (``{"G_ema": G, "D": D, ...}``) to one rig ``.safetensors`` file, atomically."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    entries = {}
    for name, net in networks.items():
        if "." in name or not name:
            raise InputError(f"network name {name!r} must be non-empty and contain no '.'")
        entries[name] = _network_entry(net)
        for key, value in net.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu").clone().contiguous()
    meta = {"format": RIG_FORMAT, "rig_networks": json.dumps(entries)}
    if extra:
        meta["rig_extra"] = json.dumps(extra)
    write_bytes_atomic(path, save(tensors, metadata=meta))


def save_network(path: str | os.PathLike, net: nn.Module, name: str = "G_ema") -> None:
    """Write one network (default name ``G_ema``) as rig ``.safetensors`` + JSON config header."""
    save_networks(path, {name: net})


@guarded
def load_rig_networks(path: str | os.PathLike) -> NetworkSet:
    """Read every network of a rig ``.safetensors`` file."""
    path = Path(path)
    label = str(path)
    tensors, meta = read_safetensors(path)
    if meta.get("format") != RIG_FORMAT or "rig_networks" not in meta:
        raise CheckpointError(f"{label}: safetensors file without rig's network header (format {meta.get('format')!r})")
    try:
        entries = json.loads(meta["rig_networks"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{label}: corrupt rig_networks header ({e})") from None
    out = NetworkSet(source=label)
    if not isinstance(entries, dict):
        raise CheckpointError(f"{label}: rig_networks header is not a JSON object")
    for name, entry in entries.items():
        if name not in NETWORK_NAMES:
            raise CheckpointError(f"{label}: unknown network {short_repr(name)} (rig knows {NETWORK_NAMES})")
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise CheckpointError(f"{label}: network {name!r} entry is not {{class, config}}")
        prefix = name + "."
        sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if entry.get("class") == "Generator":
            config = GeneratorConfig.from_dict(entry.get("config", {}), f"{label} [{name}]")
            net = _generator(config, sub, None, label, name)
        elif entry.get("class") == "Discriminator":
            config = DiscriminatorConfig.from_dict(entry.get("config", {}), f"{label} [{name}]")
            net = build_checked(lambda: Discriminator(config), sub, None, label, name).eval().requires_grad_(False)
        else:
            raise CheckpointError(f"{label}: network {name!r} has unknown class {short_repr(entry.get('class'))}")
        setattr(out, name, net)
    if "rig_extra" in meta:
        try:
            extra = json.loads(meta["rig_extra"])
            out.training_set_kwargs = extra.get("training_set_kwargs")
            labels = extra.get("labels")
            parent = extra.get("parent_identity")
            if isinstance(parent, str) and len(parent) == 16 and all(ch in "0123456789abcdef" for ch in parent):
                out.parent_identity = parent
        except (json.JSONDecodeError, AttributeError):
            labels = None
        if labels is not None:
            out.labels = _checked_labels(labels, out, label)
    return out


def _checked_labels(labels, nets: NetworkSet, label: str) -> dict:
    """The ``labels`` header of a class-conditional file, checked against its generators' c_dim."""
    try:
        names = [str(n) for n in labels["class_names"]]
        prior = [float(p) for p in labels["class_prior"]]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{label}: corrupt labels header {labels!r}") from None
    c_dims = {g.c_dim for g in (nets.G_ema, nets.G) if g is not None}
    if len(names) != len(prior) or any(c != len(names) for c in c_dims) or min(prior, default=0) < 0 \
            or abs(sum(prior) - 1) > 1e-4:
        raise CheckpointError(f"{label}: labels header gives {len(names)} classes and {len(prior)} frequencies "
                              f"(summing to {sum(prior):.4f}) for generators with c_dim {sorted(c_dims)}")
    return {"class_names": names, "class_prior": prior}


# ------------------------------------------------------------------------------------ rosinality

@guarded
def load_rosinality(path: str | os.PathLike) -> NetworkSet:
    """Build ``G_ema`` from a rosinality ``.pt`` (``g_ema`` + ``latent_avg``).

    Without ``latent_avg`` (training checkpoints), ``w_avg`` is estimated from 10,000 seeded z
    and a note says so.
    """
    label = str(path)
    g_ema, latent_avg, config = rosinality.read_rosinality(path)
    tensors, config = rosinality.rosinality_to_rig(g_ema, latent_avg, config, label)
    out = NetworkSet(source=label)
    if latent_avg is None:
        tensors["mapping.w_avg"] = torch.zeros([config.w_dim])
    net = build_checked(lambda: Generator(config), tensors, None, label, "g_ema")
    if latent_avg is None:
        tensors["mapping.w_avg"] = rosinality.mean_latent(net.mapping, config.z_dim)
        _load_checked(net, tensors, None, label, "g_ema")
        out.notes.append("no latent_avg in the file: w_avg estimated from 10,000 seeded z (truncation uses it)")
    probe_generator(net, label, "g_ema")
    out.G_ema = net.eval().requires_grad_(False)
    return out


def save_rosinality(path: str | os.PathLike, net: Generator) -> None:
    """Write a rig Generator as a rosinality ``.pt`` (``g_ema``, ``latent_avg``, ``rig_config``)."""
    import io

    ckpt = rosinality.rosinality_checkpoint(net.state_dict(), net.config)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write_bytes_atomic(path, buf.getvalue())


# ------------------------------------------------------------------------------------ dispatch

def resolve_network_path(network: str | os.PathLike) -> Path:
    """``"default"`` -> the shipped generator; anything else must be an existing file."""
    if str(network) == "default":
        from rig.paths import require_shipped

        return require_shipped(default_network_path(), "the default generator", "pass --network PATH to another network")
    path = Path(network)
    if not path.is_file():
        raise CheckpointError(f"{path}: network file not found")
    return path


def load_networks(network: str | os.PathLike) -> NetworkSet:
    """Load every network in a ``.pkl`` / ``.pt`` / ``.pth`` / ``.safetensors`` file (or ``"default"``)."""
    path = resolve_network_path(network)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return load_nvidia_pkl(path)
    if suffix in (".pt", ".pth"):
        return load_rosinality(path)
    if suffix == ".safetensors":
        return load_rig_networks(path)
    raise CheckpointError(f"{path}: unknown network format {suffix!r} (expected .pkl, .pt, .pth or .safetensors)")


def load_generator(network: str | os.PathLike, which: str = "G_ema", device: str | torch.device = "cpu") -> Generator:
    """The generator ``which`` ('G_ema' or 'G') of a network file, in eval mode on ``device``."""
    if which not in ("G_ema", "G"):
        raise InputError(f"which must be 'G_ema' or 'G', got {which!r}")
    nets = load_networks(network)
    for note in nets.notes:
        warnings.warn(f"{nets.source}: {note}", RuntimeWarning, stacklevel=2)
    net = getattr(nets, which)
    if net is None:
        raise CheckpointError(f"{nets.source}: holds no {which} network")
    if nets.labels is not None:  # plain attributes: the state dict stays NVIDIA's
        net.class_names = tuple(nets.labels["class_names"])
        net.class_prior = tuple(nets.labels["class_prior"])
    if nets.parent_identity is not None:  # a RigNet of the parent applies to it (with a notice)
        net.parent_identity = nets.parent_identity
    return net.to(device)


def load_network(path: str | os.PathLike, name: str = "G_ema") -> nn.Module:
    """One network by name from any supported file (for training code: ``load_network(p, 'D')``)."""
    nets = load_networks(path)
    net = getattr(nets, name, None) if name in NETWORK_NAMES else None
    if net is None:
        raise CheckpointError(f"{nets.source}: holds no {name!r} network")
    return net


def convert(src: str | os.PathLike, dst: str | os.PathLike, only: tuple[str, ...] = ()) -> NetworkSet:
    """Convert between formats by suffix: pkl/pt/safetensors -> .safetensors (all networks, or the
    ``only`` ones, e.g. ``("G_ema",)`` to ship a generator) or -> rosinality .pt (G_ema only).
    Tensors are copied bit for bit."""
    nets = load_networks(src)
    if only:
        unknown = [name for name in only if name not in NETWORK_NAMES]
        if unknown:
            raise InputError(f"unknown network name(s) {unknown}; choose from {NETWORK_NAMES}")
        missing = [name for name in only if getattr(nets, name) is None]
        if missing:
            raise CheckpointError(f"{nets.source}: holds no {', '.join(missing)} network")
        for name in NETWORK_NAMES:
            if name not in only:
                setattr(nets, name, None)
    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix == ".safetensors":
        extra = {k: v for k, v in (("training_set_kwargs", nets.training_set_kwargs), ("labels", nets.labels)) if v}
        extra = extra or None
        try:
            save_networks(dst, dict(nets.items()), extra=extra)
        except TypeError as e:
            raise CheckpointError(f"{src}: training_set_kwargs cannot be stored as JSON ({e})") from None
    elif suffix in (".pt", ".pth"):
        if nets.G_ema is None:
            raise CheckpointError(f"{nets.source}: no G_ema to write in rosinality format")
        save_rosinality(dst, nets.G_ema)
        if nets.G is not None or nets.D is not None:
            nets.notes.append("rosinality output holds g_ema only; G and D were not written")
    else:
        raise InputError(f"{dst}: output must end in .safetensors, .pt or .pth")
    return nets
