"""rosinality/stylegan2-pytorch ``.pt`` checkpoints <-> rig Generator state dicts.

rosinality's ``Generator`` computes the same function as NVIDIA's ``skip`` generator, with
different names and shapes:

==========================================  ==========================================
rosinality (``g_ema``)                      rig / NVIDIA (``G_ema``)
==========================================  ==========================================
``style.{i+1}.weight / .bias``              ``mapping.fc{i}.weight / .bias``
``input.input`` (1, C, 4, 4)                ``synthesis.b4.const`` (C, 4, 4)
``conv1.*`` / ``to_rgb1.*``                 ``synthesis.b4.conv1.*`` / ``synthesis.b4.torgb.*``
``convs.{2k}.*`` / ``convs.{2k+1}.*``       ``synthesis.b{2^(k+3)}.conv0.*`` / ``.conv1.*``
``to_rgbs.{k}.*``                           ``synthesis.b{2^(k+3)}.torgb.*``
``*.conv.weight`` (1, O, I, k, k)           ``*.weight`` (O, I, k, k)
``*.conv.modulation.weight / .bias``        ``*.affine.weight / .bias``
``*.noise.weight`` (1,)                     ``*.noise_strength`` ()
``*.activate.bias`` (O,)                    ``*.bias`` (O,)
``to_rgb*.bias`` (1, 3, 1, 1)               ``*.torgb.bias`` (3,)
``noises.noise_{j}`` (1, 1, R, R)           ``*.noise_const`` (R, R)
``latent_avg`` (top level)                  ``mapping.w_avg``
==========================================  ==========================================

Numerics: identical up to float32 rounding order — rosinality scales the conv weight by
``1/sqrt(fan_in)`` before demodulating (NVIDIA does not; demodulation cancels the scale except
inside the ``+1e-8`` under the square root, a relative change below 1e-9 for real weights), its
toRGB folds the same ``1/sqrt(fan_in)`` into the weight rather than the styles, and it adds the
upsampled skip image after (not before) the new RGB; up-sampling (transposed conv + [1,3,3,1]
blur with gain 4, padding 1) and toRGB up-sampling (pad 2/1) are the same operations.
Not representable in rosinality's format: conditioning (c_dim > 0), ``orig`` / ``resnet``
architectures, non-default mapping learning-rate or activation, other filters. ``num_fp16_res`` and
``conv_clamp`` are kept in the ``rig_config`` entry (rosinality's code ignores them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import warnings
from pathlib import Path

import torch

from rig.errors import CheckpointError
from rig.io.pickle_vm import short_repr
from rig.stylegan2.config import GeneratorConfig, MappingConfig, SynthesisConfig
from rig.stylegan2.config_checks import check_generator
from rig.stylegan2.ops.upfirdn2d import setup_filter

_RIG_CONFIG_KEY = "rig_config"


def _layer_pairs(num_res_blocks: int):
    """[(rig prefix, rosinality prefix, noise index)] for every modulated conv layer."""
    pairs = [("synthesis.b4.conv1", "conv1", 0)]
    for k in range(num_res_blocks):
        res = 2 ** (k + 3)
        pairs.append((f"synthesis.b{res}.conv0", f"convs.{2 * k}", 2 * k + 1))
        pairs.append((f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 * k + 2))
    return pairs


def _torgb_pairs(num_res_blocks: int):
    return [("synthesis.b4.torgb", "to_rgb1")] + [
        (f"synthesis.b{2 ** (k + 3)}.torgb", f"to_rgbs.{k}") for k in range(num_res_blocks)]


def rig_to_rosinality(state: dict[str, torch.Tensor], config: GeneratorConfig) -> dict[str, torch.Tensor]:
    """rig Generator state dict -> rosinality ``g_ema`` state dict (including blur-kernel buffers)."""
    _check_representable(config)
    n_blocks = int(math.log2(config.img_resolution)) - 2
    out: dict[str, torch.Tensor] = {}
    for i in range(config.mapping.num_layers):
        out[f"style.{i + 1}.weight"] = state[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = state[f"mapping.fc{i}.bias"]
    out["input.input"] = state["synthesis.b4.const"].unsqueeze(0)
    up_kernel = setup_filter(config.synthesis.resample_filter) * 4
    for rig, ros, j in _layer_pairs(n_blocks):
        out[f"{ros}.conv.weight"] = state[f"{rig}.weight"].unsqueeze(0)
        out[f"{ros}.conv.modulation.weight"] = state[f"{rig}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = state[f"{rig}.affine.bias"]
        out[f"{ros}.noise.weight"] = state[f"{rig}.noise_strength"].reshape(1)
        out[f"{ros}.activate.bias"] = state[f"{rig}.bias"]
        out[f"noises.noise_{j}"] = state[f"{rig}.noise_const"][None, None]
        if rig.endswith("conv0"):
            out[f"{ros}.conv.blur.kernel"] = up_kernel.clone()
    for rig, ros in _torgb_pairs(n_blocks):
        out[f"{ros}.conv.weight"] = state[f"{rig}.weight"].unsqueeze(0)
        out[f"{ros}.conv.modulation.weight"] = state[f"{rig}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = state[f"{rig}.affine.bias"]
        out[f"{ros}.bias"] = state[f"{rig}.bias"].reshape(1, -1, 1, 1)
        if ros != "to_rgb1":
            out[f"{ros}.upsample.kernel"] = up_kernel.clone()
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def rosinality_to_rig(g_ema: dict[str, torch.Tensor], latent_avg: torch.Tensor | None,
                      config: GeneratorConfig | None, source: str) -> tuple[dict[str, torch.Tensor], GeneratorConfig]:
    """rosinality ``g_ema`` state dict -> (rig state dict without ``w_avg`` if ``latent_avg`` is None, config)."""
    if config is None:
        config = infer_config(g_ema, source)
    check_generator(config, source)
    _check_representable(config)
    n_blocks = int(math.log2(config.img_resolution)) - 2
    flt = setup_filter(config.synthesis.resample_filter)
    out: dict[str, torch.Tensor] = {}

    def take(key, first=False):
        value = g_ema.get(key)
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: rosinality state dict lacks the tensor {key!r}")
        if first:  # rosinality keeps a leading batch axis of 1 that rig drops
            if value.ndim == 0 or value.shape[0] != 1:
                raise CheckpointError(f"{source}: {key} has shape {tuple(value.shape)}, expected a leading axis of 1")
            return value[0]
        return value

    for i in range(config.mapping.num_layers):
        out[f"mapping.fc{i}.weight"] = take(f"style.{i + 1}.weight")
        out[f"mapping.fc{i}.bias"] = take(f"style.{i + 1}.bias")
    if latent_avg is not None:
        out["mapping.w_avg"] = latent_avg.reshape(-1)
    out["synthesis.b4.const"] = take("input.input", first=True)
    for rig, ros, j in _layer_pairs(n_blocks):
        out[f"{rig}.weight"] = take(f"{ros}.conv.weight", first=True)
        out[f"{rig}.affine.weight"] = take(f"{ros}.conv.modulation.weight")
        out[f"{rig}.affine.bias"] = take(f"{ros}.conv.modulation.bias")
        out[f"{rig}.noise_strength"] = _scalar(take(f"{ros}.noise.weight"), f"{source}: {ros}.noise.weight")
        out[f"{rig}.bias"] = take(f"{ros}.activate.bias")
        noise = take(f"noises.noise_{j}")
        if noise.ndim != 4 or noise.shape[:2] != (1, 1):
            raise CheckpointError(f"{source}: noises.noise_{j} has shape {tuple(noise.shape)}, expected (1, 1, R, R)")
        out[f"{rig}.noise_const"] = noise[0, 0]
        out[f"{rig}.resample_filter"] = flt.clone()
        if rig.endswith("conv0"):
            _check_kernel(take(f"{ros}.conv.blur.kernel"), flt * 4, f"{source}: {ros}.conv.blur.kernel")
    for rig, ros in _torgb_pairs(n_blocks):
        out[f"{rig}.weight"] = take(f"{ros}.conv.weight", first=True)
        out[f"{rig}.affine.weight"] = take(f"{ros}.conv.modulation.weight")
        out[f"{rig}.affine.bias"] = take(f"{ros}.conv.modulation.bias")
        out[f"{rig}.bias"] = take(f"{ros}.bias").reshape(-1)
        if ros != "to_rgb1":
            _check_kernel(take(f"{ros}.upsample.kernel"), flt * 4, f"{source}: {ros}.upsample.kernel")
    for k in range(n_blocks + 1):
        out[f"synthesis.b{2 ** (k + 2)}.resample_filter"] = flt.clone()
    return {k: v.detach().clone().contiguous() for k, v in out.items()}, config


def _scalar(t: torch.Tensor, where: str) -> torch.Tensor:
    if t.numel() != 1:
        raise CheckpointError(f"{where}: has shape {tuple(t.shape)}, expected one value")
    return t.reshape([])


def _check_kernel(kernel: torch.Tensor, expected: torch.Tensor, where: str) -> None:
    if kernel.shape != expected.shape or not torch.allclose(kernel.float(), expected, rtol=1e-6, atol=1e-8):
        raise CheckpointError(f"{where}: blur kernel is not the filter rig expects ({expected.shape[0]}-tap)")


def _check_representable(config: GeneratorConfig) -> None:
    s, m = config.synthesis, config.mapping
    problems = []
    if config.c_dim:
        problems.append("conditioning (c_dim > 0)")
    if s.architecture != "skip":
        problems.append(f"architecture {s.architecture!r}")
    if s.kernel_size != 3 or not s.use_noise or s.activation != "lrelu":
        problems.append("non-default synthesis layers")
    if m.activation != "lrelu" or m.lr_multiplier != 0.01 or config.z_dim != config.w_dim:
        problems.append("non-default mapping network")
    if config.img_channels != 3:
        problems.append(f"{config.img_channels} image channels")
    if problems:
        raise CheckpointError("rosinality's Generator cannot express: " + ", ".join(problems))


def infer_config(g_ema: dict[str, torch.Tensor], source: str) -> GeneratorConfig:
    """Recover the architecture of a rosinality generator from its tensor shapes."""
    bad = [k for k, v in g_ema.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: rosinality state dict holds non-tensor entries ({short_repr(bad[:3])})")
    for key in ["style.1.weight", "input.input"] + [k for k in g_ema if k.endswith(".conv.weight")]:
        if key in g_ema and g_ema[key].ndim < 2:
            raise CheckpointError(f"{source}: {key} has shape {tuple(g_ema[key].shape)}, expected at least 2 axes")
    try:
        style_dim = g_ema["style.1.weight"].shape[1]
        n_mlp = 0
        while f"style.{n_mlp + 1}.weight" in g_ema:
            n_mlp += 1
        n_blocks = 0
        while f"to_rgbs.{n_blocks}.conv.weight" in g_ema:
            n_blocks += 1
        channels = {4: g_ema["input.input"].shape[1]}
        for k in range(n_blocks):
            channels[2 ** (k + 3)] = g_ema[f"convs.{2 * k}.conv.weight"].shape[1]
    except KeyError as e:
        raise CheckpointError(f"{source}: not a rosinality generator state dict (missing {e})") from None
    resolution = 2 ** (n_blocks + 2)
    channel_max = max(channels.values())
    channel_base = channels[resolution] * resolution
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        raise CheckpointError(f"{source}: channel layout {channels} is not min(base // res, max) for any base/max")
    return GeneratorConfig(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=resolution, img_channels=3,
                           mapping=MappingConfig(num_layers=n_mlp),
                           synthesis=SynthesisConfig(channel_base=channel_base, channel_max=channel_max))


def mean_latent(mapping: torch.nn.Module, z_dim: int, num: int = 10000, seed: int = 0) -> torch.Tensor:
    """Average w over ``num`` seeded z (used when a rosinality file carries no ``latent_avg``)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([num, z_dim], generator=gen)
    with torch.no_grad():
        return mapping(z, None, skip_w_avg_update=True)[:, 0].mean(dim=0)


def read_rosinality(path: str | os.PathLike, key: str = "g_ema"):
    """Load a rosinality ``.pt`` with ``torch.load(weights_only=True)``.

    Returns (state dict of ``key``, latent_avg or None, rig config stored by rig or None).
    """
    label = str(path)
    if not Path(path).is_file():
        raise CheckpointError(f"{label}: file not found")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - weights_only refusals and corrupt files alike
        raise CheckpointError(f"{label}: cannot read as a weights-only torch checkpoint ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    if not isinstance(ckpt, dict) or key not in ckpt or not isinstance(ckpt[key], dict):
        keys = sorted(map(str, ckpt))[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{label}: no {key!r} state dict in this rosinality checkpoint (found {keys})")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{label}: latent_avg is not a tensor")
    for name, t in list(ckpt[key].items()) + [("latent_avg", latent_avg)]:
        # torch.load makes views without copying; a view with more elements than its storage
        # (stride 0) would blow a few bytes up to gigabytes when rig copies it.
        if isinstance(t, torch.Tensor) and t.numel() * t.element_size() > t.untyped_storage().nbytes():
            raise CheckpointError(f"{label}: tensor {short_repr(name)} of shape {tuple(t.shape)} is larger than "
                                  "its storage (overlapping view)")
    config = None
    if isinstance(ckpt.get(_RIG_CONFIG_KEY), str):
        try:
            config = GeneratorConfig.from_dict(json.loads(ckpt[_RIG_CONFIG_KEY]), source=f"{label}: rig_config")
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{label}: rig_config is not valid JSON ({e})") from None
    return ckpt[key], latent_avg, config


def rosinality_checkpoint(state: dict[str, torch.Tensor], config: GeneratorConfig) -> dict:
    """The dict rig writes as a rosinality ``.pt``: ``g_ema``, ``latent_avg`` and ``rig_config``."""
    s = config.synthesis
    if s.num_fp16_res or s.conv_clamp is not None:
        warnings.warn("rosinality's code ignores num_fp16_res / conv_clamp; they are kept only in 'rig_config'",
                      RuntimeWarning, stacklevel=2)
    return {"g_ema": rig_to_rosinality(state, config), "latent_avg": state["mapping.w_avg"].detach().clone(),
            _RIG_CONFIG_KEY: json.dumps(config.to_dict())}
