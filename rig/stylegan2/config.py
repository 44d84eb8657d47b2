"""Architecture configs for the StyleGAN2 networks, and their translation from NVIDIA's kwargs.

One dataclass per network. ``GeneratorConfig.from_nvidia_kwargs`` takes the ``_init_kwargs`` a
stylegan2-ada-pytorch snapshot stores for its ``Generator`` (``z_dim``, ``c_dim``, ``w_dim``,
``img_resolution``, ``img_channels``, ``mapping_kwargs``, ``synthesis_kwargs``) and refuses keys it
does not understand, so a checkpoint is either built exactly or not at all; every value read from a
file is then typed and bounded by ``config_checks`` before a network is built. ``to_dict`` /
``from_dict`` give the JSON form stored beside rig's ``.safetensors`` weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rig.errors import CheckpointError
from rig.stylegan2.config_checks import check_discriminator, check_generator


@dataclass(frozen=True)
class MappingConfig:
    """z (+ embedded c) -> w MLP. ``embed_features`` / ``layer_features`` None = w_dim."""

    num_layers: int = 8
    embed_features: int | None = None
    layer_features: int | None = None
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995


@dataclass(frozen=True)
class SynthesisConfig:
    """Synthesis network: channels per resolution = min(channel_base // res, channel_max).

    ``num_fp16_res`` highest resolutions run in float16 on CUDA (float32 elsewhere, see
    networks docs); ``conv_clamp`` clamps conv outputs to +-value (None = off).
    ``kernel_size`` / ``use_noise`` / ``activation`` are the per-layer options.
    """

    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    architecture: str = "skip"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    fp16_channels_last: bool = False
    kernel_size: int = 3
    use_noise: bool = True
    activation: str = "lrelu"

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)


@dataclass(frozen=True)
class GeneratorConfig:
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping: MappingConfig = field(default_factory=MappingConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)

    @staticmethod
    def from_nvidia_kwargs(kwargs: Mapping[str, Any], source: str = "<checkpoint>") -> "GeneratorConfig":
        """Build from a snapshot Generator's ``_init_kwargs`` (unknown keys -> CheckpointError)."""
        kw = dict(kwargs)
        mapping = _sub_config(MappingConfig, kw.pop("mapping_kwargs", None) or {}, f"{source}: G.mapping_kwargs")
        synthesis = _sub_config(SynthesisConfig, kw.pop("synthesis_kwargs", None) or {},
                                f"{source}: G.synthesis_kwargs")
        kw.pop("epochs", None)  # a bookkeeping field some forks add; it has no weights
        config = _sub_config(GeneratorConfig, kw, f"{source}: G", mapping=mapping, synthesis=synthesis)
        check_generator(config, f"{source}: G")
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: Mapping[str, Any], source: str = "<config>") -> "GeneratorConfig":
        d = dict(d)
        mapping = _sub_config(MappingConfig, d.pop("mapping", {}) or {}, f"{source}: mapping")
        synthesis = _sub_config(SynthesisConfig, d.pop("synthesis", {}) or {}, f"{source}: synthesis")
        config = _sub_config(GeneratorConfig, d, source, mapping=mapping, synthesis=synthesis)
        check_generator(config, source)
        return config


@dataclass(frozen=True)
class DiscriminatorBlockConfig:
    activation: str = "lrelu"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    fp16_channels_last: bool = False
    freeze_layers: int = 0


@dataclass(frozen=True)
class EpilogueConfig:
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    activation: str = "lrelu"


@dataclass(frozen=True)
class DiscriminatorConfig:
    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None
    block: DiscriminatorBlockConfig = field(default_factory=DiscriminatorBlockConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    epilogue: EpilogueConfig = field(default_factory=EpilogueConfig)

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @staticmethod
    def from_nvidia_kwargs(kwargs: Mapping[str, Any], source: str = "<checkpoint>") -> "DiscriminatorConfig":
        kw = dict(kwargs)
        block = _sub_config(DiscriminatorBlockConfig, kw.pop("block_kwargs", None) or {}, f"{source}: D.block_kwargs")
        mapping = _sub_config(MappingConfig, kw.pop("mapping_kwargs", None) or {}, f"{source}: D.mapping_kwargs")
        epilogue = _sub_config(EpilogueConfig, kw.pop("epilogue_kwargs", None) or {}, f"{source}: D.epilogue_kwargs")
        kw.pop("epochs", None)
        config = _sub_config(DiscriminatorConfig, kw, f"{source}: D", block=block, mapping=mapping, epilogue=epilogue)
        check_discriminator(config, f"{source}: D")
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: Mapping[str, Any], source: str = "<config>") -> "DiscriminatorConfig":
        d = dict(d)
        block = _sub_config(DiscriminatorBlockConfig, d.pop("block", {}) or {}, f"{source}: block")
        mapping = _sub_config(MappingConfig, d.pop("mapping", {}) or {}, f"{source}: mapping")
        epilogue = _sub_config(EpilogueConfig, d.pop("epilogue", {}) or {}, f"{source}: epilogue")
        config = _sub_config(DiscriminatorConfig, d, source, block=block, mapping=mapping, epilogue=epilogue)
        check_discriminator(config, source)
        return config


def _plain(value: Any, depth: int = 0) -> Any:
    """Lists -> tuples (hashable, frozen-dataclass friendly); numpy scalars -> Python numbers.

    Config values are flat (at most a filter tuple); anything nested deeper is left as it is for
    ``config_checks`` to refuse."""
    if isinstance(value, (list, tuple)) and depth < 2:
        return tuple(_plain(v, depth + 1) for v in value)
    if isinstance(value, (np.generic, np.ndarray)) and value.ndim == 0:
        return value.item()
    return value


def _sub_config(cls, kwargs: Mapping[str, Any], where: str, **fixed):
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise CheckpointError(f"{where}: constructor arguments are not a dict of named values")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise CheckpointError(f"{where}: unsupported constructor arguments {unknown}; rig knows {sorted(names)}")
    values = {k: _plain(v) for k, v in kwargs.items()}
    values.update(fixed)
    return cls(**values)
