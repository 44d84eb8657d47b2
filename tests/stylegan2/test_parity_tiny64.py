"""rig's networks loaded from NVIDIA's tiny64 snapshot reproduce NVIDIA's reference outputs."""

import numpy as np
import pytest
import torch

from rig.stylegan2.checkpoints import load_rig_networks, save_networks
from rig.stylegan2.nvidia_pickle import read_snapshot, record_state_dict

TOL = 1e-4


def _z(ref, i):
    return torch.from_numpy(np.random.RandomState(int(ref["seeds"][i])).randn(1, 64))  # float64, as generate.py


def test_seeds_give_the_fixture_latents(tiny64_ref):
    for i in range(4):
        assert np.array_equal(_z(tiny64_ref, i).float().numpy()[0], tiny64_ref["z"][i])


def test_state_dict_names_and_shapes_match_nvidia(tiny64_nets, tiny64_state):
    ours = tiny64_nets.G_ema.state_dict()
    assert set(ours) == set(tiny64_state)
    for name, value in tiny64_state.items():
        assert tuple(ours[name].shape) == value.shape, name
        np.testing.assert_array_equal(ours[name].numpy(), value, err_msg=name)


@pytest.mark.parametrize("psi,key", [(0.7, "ws_psi07"), (1.0, "ws_psi10")])
@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_mapping_ws(tiny64_nets, tiny64_ref, psi, key, impl):
    with torch.no_grad():
        ws = torch.cat([tiny64_nets.G_ema.mapping(_z(tiny64_ref, i), None, truncation_psi=psi, impl=impl)
                        for i in range(4)])
    assert ws.shape == (4, 10, 64)
    assert np.abs(ws.numpy() - tiny64_ref[key]).max() <= TOL


@pytest.mark.parametrize("ws_key,img_key,noise_mode", [
    ("ws_psi07", "img_psi07", "const"), ("ws_psi10", "img_psi10", "const"),
    ("ws_psi07", "img_psi07_noise_none", "none")])
@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_synthesis_images(tiny64_nets, tiny64_ref, ws_key, img_key, noise_mode, impl):
    ws = torch.from_numpy(tiny64_ref[ws_key])
    with torch.no_grad():
        per_seed = torch.cat([tiny64_nets.G_ema.synthesis(ws[i:i + 1], noise_mode=noise_mode, impl=impl)
                              for i in range(4)])
        batched = tiny64_nets.G_ema.synthesis(ws, noise_mode=noise_mode, impl=impl)
    assert per_seed.dtype == torch.float32 and per_seed.shape == (4, 3, 64, 64)
    assert np.abs(per_seed.numpy() - tiny64_ref[img_key]).max() <= TOL
    assert np.abs(batched.numpy() - tiny64_ref[img_key]).max() <= TOL


def test_noise_modes_differ(tiny64_nets, tiny64_ref):
    assert np.abs(tiny64_ref["img_psi07"] - tiny64_ref["img_psi07_noise_none"]).max() > 1e-2
    ws = torch.from_numpy(tiny64_ref["ws_psi07"][:1])
    with torch.no_grad():
        a = tiny64_nets.G_ema.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
        b = tiny64_nets.G_ema.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
        c = tiny64_nets.G_ema.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_full_generator_and_uint8_path(tiny64_nets, tiny64_ref, impl):
    with torch.no_grad():
        img = torch.cat([tiny64_nets.G_ema(_z(tiny64_ref, i), None, truncation_psi=0.7, noise_mode="const", impl=impl)
                         for i in range(4)])
    assert np.abs(img.numpy() - tiny64_ref["img_G_psi07"]).max() <= TOL
    from rig.stylegan2.generate import to_uint8_nhwc

    u8 = to_uint8_nhwc(img)
    ref = tiny64_ref["img_G_psi07_uint8_nhwc"]
    assert u8.dtype == np.uint8 and u8.shape == ref.shape
    # A float difference of <= 1e-4 can only flip a value sitting on a rounding edge, by one level.
    diff = np.abs(u8.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_discriminator_logits(tiny64_nets, tiny64_ref, impl):
    with torch.no_grad():
        logits = tiny64_nets.D(torch.from_numpy(tiny64_ref["img_psi10"]), None, impl=impl)
    assert logits.shape == (4, 1)
    assert np.abs(logits.numpy() - tiny64_ref["D_logits_img_psi10"]).max() <= TOL


def _perturbed_copy(g_ema, seed=2000, s=0.02):
    """The fixture README's recipe for G: G_ema plus seeded noise, built here independently."""
    import copy

    g = copy.deepcopy(g_ema)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in g.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("noise_strength"):
                p.add_(s * noise)
            elif name.endswith("bias"):
                owner = g.get_submodule(name.rsplit(".", 1)[0])
                p.add_((s / getattr(owner, "bias_gain", 1)) * noise)
            else:
                p.add_(s * p.std() * noise)
    return g


def test_G_differs_from_G_ema_and_matches_its_own_construction(tiny64_nets, tiny64_ref):
    z = _z(tiny64_ref, 0)
    independent = _perturbed_copy(tiny64_nets.G_ema)
    with torch.no_grad():
        img_g = tiny64_nets.G(z, None, truncation_psi=0.7, noise_mode="const")
        img_ema = tiny64_nets.G_ema(z, None, truncation_psi=0.7, noise_mode="const")
        img_ind = independent(z, None, truncation_psi=0.7, noise_mode="const")
    assert (img_g - img_ema).abs().max() > 1e-2
    assert np.abs(img_ema.numpy() - tiny64_ref["img_G_psi07"][:1]).max() <= TOL
    assert (img_g - img_ind).abs().max() <= TOL


def test_safetensors_gives_identical_outputs(tiny64_nets, tiny64_ref, tmp_path):
    path = tmp_path / "tiny64.safetensors"
    save_networks(path, dict(tiny64_nets.items()))
    loaded = load_rig_networks(path)
    for name, net in tiny64_nets.items():
        a, b = net.state_dict(), getattr(loaded, name).state_dict()
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), name
    ws = torch.from_numpy(tiny64_ref["ws_psi07"])
    with torch.no_grad():
        assert torch.equal(tiny64_nets.G_ema.synthesis(ws, noise_mode="const", impl="ref"),
                           loaded.G_ema.synthesis(ws, noise_mode="const", impl="ref"))
        imgs = torch.from_numpy(tiny64_ref["img_psi10"])
        assert torch.equal(tiny64_nets.D(imgs, None, impl="ref"), loaded.D(imgs, None, impl="ref"))


def test_snapshot_records_hold_module_tree(tiny64_pkl):
    snap = read_snapshot(tiny64_pkl)
    assert snap.training_set_kwargs is None and snap.augment_pipe is None
    tensors, classes = record_state_dict(snap.G_ema)
    assert classes["synthesis.b64.conv0"] == "SynthesisLayer"
    assert classes["mapping.fc1"] == "FullyConnectedLayer"
    assert len(tensors) == 94
