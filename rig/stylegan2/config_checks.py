"""Types and bounds of every network config value, checked before a network is built from a file.

A checkpoint's config decides how much memory building its network takes and which code paths run:
``num_layers`` 1e9 or ``w_dim`` 2^20 would allocate gigabytes before any weight is compared, a
``channel_base`` of 4 at 2^16 px divides by zero, a string where an int belongs fails deep inside a
layer. :func:`check_config` refuses such values with a ``CheckpointError`` naming the file and the
field; the limits are far above every published StyleGAN2 network (FFHQ 1024: w_dim 512, 8 mapping
layers, channel_base 32768, channel_max 512) but low enough that a network cannot need more than a
few GB. The file's tensor shapes are compared with the built network afterwards, so a config that
passes here but does not match its weights is still refused.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rig.errors import CheckpointError

MAX_DIM = 4096          # z_dim, w_dim, c_dim, feature widths
MAX_CHANNELS = 4096     # channel_max
MAX_CHANNEL_BASE = 1 << 20
MAX_RESOLUTION = 4096
MAX_MAPPING_LAYERS = 32
ARCHITECTURES = ("orig", "skip", "resnet")

# (field name) -> (kind, low, high); kind: int, real, bool, str-choice, filter.
_BOUNDS: dict[str, tuple[str, Any, Any]] = {
    "z_dim": ("int", 0, MAX_DIM), "c_dim": ("int", 0, MAX_DIM), "w_dim": ("int", 1, MAX_DIM),
    "img_resolution": ("int", 4, MAX_RESOLUTION), "img_channels": ("int", 1, 8),
    "num_layers": ("int", 0, MAX_MAPPING_LAYERS), "embed_features": ("int?", 1, MAX_DIM),
    "layer_features": ("int?", 1, MAX_DIM), "lr_multiplier": ("real", 1e-6, 1e3), "w_avg_beta": ("real?", 0.0, 1.0),
    "channel_base": ("int", 1, MAX_CHANNEL_BASE), "channel_max": ("int", 1, MAX_CHANNELS),
    "num_fp16_res": ("int", 0, 16), "conv_clamp": ("real?", 1e-6, 1e6), "kernel_size": ("int", 1, 7),
    "use_noise": ("bool", None, None), "fp16_channels_last": ("bool", None, None),
    "architecture": ("choice", ARCHITECTURES, None), "activation": ("activation", None, None),
    "resample_filter": ("filter", 1, 16), "cmap_dim": ("int?", 1, MAX_DIM), "freeze_layers": ("int", 0, 64),
    "mbstd_group_size": ("int?", 1, 1024), "mbstd_num_channels": ("int", 0, 64),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(name: str, value: Any, where: str) -> None:
    kind, low, high = _BOUNDS[name]
    if kind.endswith("?"):
        if value is None:
            return
        kind = kind[:-1]
    if kind == "int":
        ok = _is_int(value) and low <= value <= high
        want = f"an int in {low}..{high}"
    elif kind == "real":
        ok = _is_real(value) and low <= value <= high
        want = f"a finite number in [{low}, {high}]"
    elif kind == "bool":
        ok, want = isinstance(value, bool), "true or false"
    elif kind == "choice":
        ok, want = value in low, f"one of {list(low)}"
    elif kind == "activation":
        from rig.stylegan2.ops.bias_act import ACTIVATIONS

        ok, want = isinstance(value, str) and value in ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}"
    else:  # filter: 1..16 finite taps with a non-zero sum
        ok = (isinstance(value, tuple) and low <= len(value) <= high and all(_is_real(t) for t in value)
              and abs(sum(value)) > 1e-12)
        want = f"{low} to {high} finite filter taps with a non-zero sum"
    if not ok:
        shown = repr(value) if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
        raise CheckpointError(f"{where}: '{name}' is {shown[:60]}, expected {want}")


def check_fields(config: Any, where: str) -> None:
    """Type and range of every field of one config dataclass (nested configs are checked by their own call)."""
    for f in dataclasses.fields(config):
        if f.name in _BOUNDS:
            _check_value(f.name, getattr(config, f.name), where)


def check_generator(config: Any, where: str) -> None:
    """All fields of a ``GeneratorConfig`` and the relations between them."""
    check_fields(config, where)
    check_fields(config.mapping, f"{where}: mapping")
    check_fields(config.synthesis, f"{where}: synthesis")
    if config.z_dim + config.c_dim == 0:
        raise CheckpointError(f"{where}: z_dim and c_dim are both 0 (the mapping network would have no input)")
    if config.mapping.num_layers < 1:
        raise CheckpointError(f"{where}: the generator's mapping network needs at least one layer")
    _check_resolution_and_channels(config.img_resolution, config.synthesis, where)


def check_discriminator(config: Any, where: str) -> None:
    """All fields of a ``DiscriminatorConfig`` and the relations between them."""
    check_fields(config, where)
    for sub in ("block", "mapping", "epilogue"):
        check_fields(getattr(config, sub), f"{where}: {sub}")
    _check_resolution_and_channels(config.img_resolution, config, where)


def _check_resolution_and_channels(resolution: int, synthesis: Any, where: str) -> None:
    log2 = int(math.log2(resolution))
    if 2 ** log2 != resolution:
        raise CheckpointError(f"{where}: img_resolution {resolution} is not a power of two")
    if synthesis.channel_base // resolution < 1:
        raise CheckpointError(f"{where}: channel_base {synthesis.channel_base} gives no channels at "
                              f"{resolution} px (channel_base // resolution must be >= 1)")
    if synthesis.num_fp16_res > log2 - 1:
        raise CheckpointError(f"{where}: num_fp16_res {synthesis.num_fp16_res} exceeds the {log2 - 1} resolutions")
