"""Format round trips (safetensors, rosinality .pt) and the rosinality name mapping against NVIDIA's outputs."""

import numpy as np
import pytest
import torch

from rig.errors import CheckpointError, InputError
from rig.stylegan2.checkpoints import (convert, load_generator, load_network, load_networks, resolve_network_path,
                                       save_network)
from rig.stylegan2.config import GeneratorConfig, SynthesisConfig


def _rosinality_g_ema(state: dict) -> dict:
    """Rename NVIDIA's G_ema state (fixture npz) the way rosinality's Generator names its parameters."""
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    ros = {"style.1.weight": t["mapping.fc0.weight"], "style.1.bias": t["mapping.fc0.bias"],
           "style.2.weight": t["mapping.fc1.weight"], "style.2.bias": t["mapping.fc1.bias"],
           "input.input": t["synthesis.b4.const"][None]}
    blur = torch.tensor([1.0, 3, 3, 1])
    blur = torch.outer(blur, blur) / 16  # rosinality: make_kernel / sum * factor**2
    layers = [("synthesis.b4.conv1", "conv1")]
    for k, res in enumerate([8, 16, 32, 64]):
        layers += [(f"synthesis.b{res}.conv0", f"convs.{2 * k}"), (f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}")]
    for j, (nv, ro) in enumerate(layers):
        ros[f"{ro}.conv.weight"] = t[f"{nv}.weight"][None]
        ros[f"{ro}.conv.modulation.weight"] = t[f"{nv}.affine.weight"]
        ros[f"{ro}.conv.modulation.bias"] = t[f"{nv}.affine.bias"]
        ros[f"{ro}.noise.weight"] = t[f"{nv}.noise_strength"].reshape(1)
        ros[f"{ro}.activate.bias"] = t[f"{nv}.bias"]
        ros[f"noises.noise_{j}"] = t[f"{nv}.noise_const"][None, None]
        if nv.endswith("conv0"):
            ros[f"{ro}.conv.blur.kernel"] = blur
    rgbs = [("synthesis.b4.torgb", "to_rgb1")] + [(f"synthesis.b{r}.torgb", f"to_rgbs.{k}")
                                                  for k, r in enumerate([8, 16, 32, 64])]
    for nv, ro in rgbs:
        ros[f"{ro}.conv.weight"] = t[f"{nv}.weight"][None]
        ros[f"{ro}.conv.modulation.weight"] = t[f"{nv}.affine.weight"]
        ros[f"{ro}.conv.modulation.bias"] = t[f"{nv}.affine.bias"]
        ros[f"{ro}.bias"] = t[f"{nv}.bias"].reshape(1, 3, 1, 1)
        if ro != "to_rgb1":
            ros[f"{ro}.upsample.kernel"] = blur
    return ros


def test_hand_built_rosinality_file_reproduces_nvidia_images(tmp_path, tiny64_state, tiny64_ref):
    path = tmp_path / "tiny64_rosinality.pt"
    torch.save({"g_ema": _rosinality_g_ema(tiny64_state),
                "latent_avg": torch.from_numpy(tiny64_state["mapping.w_avg"])}, path)
    g = load_generator(path)
    assert g.config.synthesis.channel_base == 2048 and g.config.synthesis.channel_max == 64
    assert g.config.mapping.num_layers == 2 and g.num_ws == 10
    with torch.no_grad():
        ws = torch.cat([g.mapping(torch.from_numpy(tiny64_ref["z"][i:i + 1]), None, truncation_psi=0.7)
                        for i in range(4)])
        img = torch.cat([g.synthesis(ws[i:i + 1], noise_mode="const") for i in range(4)])
    assert np.abs(ws.numpy() - tiny64_ref["ws_psi07"]).max() <= 1e-4
    assert np.abs(img.numpy() - tiny64_ref["img_psi07"]).max() <= 1e-4


def test_rosinality_training_checkpoint_without_latent_avg(tmp_path, tiny64_state):
    import argparse

    path = tmp_path / "train.pt"
    torch.save({"g_ema": _rosinality_g_ema(tiny64_state), "args": argparse.Namespace(size=64)}, path)
    with pytest.warns(RuntimeWarning, match="latent_avg"):
        g = load_generator(path)
    # w_avg estimated from 10,000 z lands near the fixture's (also a 10,000-sample mean, other seeds).
    err = (g.mapping.w_avg - torch.from_numpy(tiny64_state["mapping.w_avg"])).abs().max()
    assert err < 0.1


def test_conversions_are_lossless(tmp_path, tiny64_pkl, tiny64_nets):
    st = tmp_path / "a.safetensors"
    pt = tmp_path / "b.pt"
    st2 = tmp_path / "c.safetensors"
    convert(tiny64_pkl, st)
    convert(st, pt)
    convert(pt, st2)
    a, c = load_networks(st), load_networks(st2)
    ref = tiny64_nets.G_ema.state_dict()
    for net in (a.G_ema, c.G_ema):
        sd = net.state_dict()
        assert set(sd) == set(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)
        assert net.config == tiny64_nets.G_ema.config
    assert a.D is not None and a.G is not None and c.D is None
    # rosinality file is a plain weights-only checkpoint with rosinality's names
    ckpt = torch.load(pt, weights_only=True)
    assert "convs.7.conv.weight" in ckpt["g_ema"] and ckpt["g_ema"]["input.input"].shape == (1, 64, 4, 4)


def test_rosinality_refuses_what_it_cannot_express(tmp_path):
    from rig.stylegan2.networks import Generator

    g = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, synthesis=SynthesisConfig(
        channel_base=64, channel_max=8, architecture="resnet")))
    src = tmp_path / "g.safetensors"
    save_network(src, g)
    with pytest.raises(CheckpointError, match="resnet"):
        convert(src, tmp_path / "g.pt")


def test_load_network_by_name_and_missing_default(tmp_path, tiny64_pkl, monkeypatch):
    d = load_network(tiny64_pkl, "D")
    assert type(d).__name__ == "Discriminator"
    import rig.stylegan2.checkpoints as ck

    monkeypatch.setattr(ck, "default_network_path", lambda: tmp_path / "nothing" / "generator.safetensors")
    with pytest.raises(CheckpointError, match="default generator is missing from this rig install"):
        resolve_network_path("default")
    with pytest.raises(CheckpointError, match="unknown network format"):
        bad = tmp_path / "x.onnx"
        bad.write_bytes(b"0")
        load_networks(bad)


def test_corrupt_safetensors_and_foreign_pt(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError):
        load_networks(bad)
    # A .pt whose pickle names os.system: torch's weights-only loader refuses it, nothing runs.
    import pickle

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"g_ema": {}, "x": __import__("os").system}, protocol=2))
    with pytest.raises(CheckpointError, match="weights-only"):
        load_networks(evil)


def test_convert_only_keeps_the_named_networks_bit_for_bit(tmp_path, tiny64_pkl):
    dst = tmp_path / "g_ema.safetensors"
    convert(tiny64_pkl, dst, only=("G_ema",))
    nets, src = load_networks(dst), load_networks(tiny64_pkl)
    assert nets.G_ema is not None and nets.G is None and nets.D is None
    for (k, a), (k2, b) in zip(src.G_ema.state_dict().items(), nets.G_ema.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    with pytest.raises(InputError, match="unknown network"):
        convert(tiny64_pkl, tmp_path / "x.safetensors", only=("G_bad",))
    with pytest.raises(CheckpointError, match="holds no D"):
        convert(dst, tmp_path / "y.safetensors", only=("D",))
