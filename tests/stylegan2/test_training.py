"""StyleGAN2 training machinery: losses vs closed forms, EMA, data order, and a tiny run that resumes bit-exactly."""

import json
import math

import numpy as np
import pytest
import torch

from rig.errors import CheckpointError, InputError
from rig.stylegan2.training import loss as L
from rig.stylegan2.training.config import preset
from rig.stylegan2.training.data import ImageStream
from rig.stylegan2.training.ema import ema_beta, update_ema
from rig.stylegan2.training.loop import Trainer, _lazy_adam
from rig.stylegan2.training.snapshot import list_snapshots, read_snapshot

from .training_helpers import (assert_same_networks, assert_same_snapshots, run_straight_and_resumed, smooth_images,
                               snapshot_tensors, tiny)


_images = smooth_images


# ---------------------------------------------------------------- losses against closed forms


def test_logistic_losses_match_log_sigmoid():
    real, fake = torch.tensor([[0.3], [-2.0], [4.0]]), torch.tensor([[1.5], [-0.5], [0.0]])
    sig = torch.sigmoid
    assert torch.allclose(L.g_nonsaturating_loss(fake), -torch.log(sig(fake[:, 0])), atol=1e-6)
    assert torch.allclose(L.d_logistic_loss(real, fake), -torch.log(1 - sig(fake[:, 0])) - torch.log(sig(real[:, 0])), atol=1e-6)


def test_r1_of_linear_discriminator_is_weight_norm():
    w = torch.randn(3, 5, 5, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    logits = (x * w).sum(dim=(1, 2, 3))[:, None] + (x ** 2).sum() * 0  # dD/dx = w for every sample
    assert torch.allclose(L.r1_penalty(logits, x), w.square().sum().expand(4), rtol=1e-5)


def test_path_length_of_linear_generator():
    # img = A ws (per sample, flattened): J^T y = A^T y; check against the explicit product.
    g = torch.Generator().manual_seed(1)
    A = torch.randn(3 * 4 * 4, 2 * 6, generator=g)
    ws = torch.randn(5, 2, 6, requires_grad=True)
    img = (ws.reshape(5, -1) @ A.T).reshape(5, 3, 4, 4)
    noise = torch.randn(img.shape, generator=g)
    y = noise.reshape(5, -1) / 4.0  # sqrt(H*W) = 4
    jty = (y @ A).reshape(5, 2, 6)
    expect = jty.square().sum(2).mean(1).sqrt()
    assert torch.allclose(L.path_length(img, ws, noise), expect, rtol=1e-5)


# ---------------------------------------------------------------- EMA, optimiser, data order


def test_ema_half_life_and_update():
    beta = ema_beta(batch=8, ema_kimg=2.0, ema_rampup=None, cur_nimg=10**6)
    assert math.isclose(beta ** (2000 / 8), 0.5, rel_tol=1e-9)
    ramped = ema_beta(batch=8, ema_kimg=2.0, ema_rampup=0.05, cur_nimg=1000)  # half-life 50 images
    assert math.isclose(ramped ** (50 / 8), 0.5, rel_tol=1e-9)
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    update_ema(a, b, 0.75)
    assert torch.allclose(a.weight, 0.75 * before + 0.25 * b.weight)


def test_lazy_adam_correction():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = _lazy_adam(p, 0.0025, (0.0, 0.99), 16)
    group = opt.param_groups[0]
    assert math.isclose(group["lr"], 0.0025 * 16 / 17)
    assert math.isclose(group["betas"][1], 0.99 ** (16 / 17))
    assert _lazy_adam(p, 0.0025, (0.0, 0.99), None).param_groups[0]["lr"] == 0.0025


def test_image_stream_epochs_and_resume():
    imgs = _images(5, 8)
    s = ImageStream(imgs, seed=3, xflip=True)
    epoch = torch.cat([s.next(2) for _ in range(5)])  # 10 = one epoch of 5 images + 5 mirrors
    expect = torch.cat([imgs, imgs.flip(3)]).float() / 127.5 - 1
    key = lambda t: sorted(map(tuple, t.reshape(len(t), -1).tolist()))
    assert key(epoch) == key(expect)
    s.next(3)
    state = s.state()
    ahead = s.next(7)
    t = ImageStream(imgs, seed=3, xflip=True)
    t.load_state(state)
    assert torch.equal(t.next(7), ahead)


# ---------------------------------------------------------------- the loop


_tiny = tiny
_tensors = snapshot_tensors


def test_two_intervals_equal_one_plus_resume_plus_one(tmp_path):
    imgs = _images()
    cfg = _tiny(kimg=0.032, snapshot_kimg=0.016)  # 8 steps of 4 images; R1 every 4, PL every 2
    straight = Trainer.start(cfg, imgs, tmp_path / "a", progress=False)
    straight.train()
    first = Trainer.start(cfg.replace(kimg=0.016), imgs, tmp_path / "b", progress=False)
    first.train()
    torch.manual_seed(12345)  # the global RNG must play no part
    resumed = Trainer.resume(tmp_path / "b", imgs, kimg=0.032, progress=False)
    assert resumed.nimg == 16
    resumed.train()
    a, b = _tensors(tmp_path / "a"), _tensors(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert any(k.startswith("opt_D.") for k in a) and "pl_mean" in a and float(a["pl_mean"]) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # ... and training did change the weights.
    fresh = Trainer.start(cfg, imgs, tmp_path / "c", progress=False)
    assert not torch.equal(fresh.G.synthesis.b16.conv1.weight, straight.G.synthesis.b16.conv1.weight)
    ha = [{k: v for k, v in h.items() if k in ("kimg", "loss_G", "loss_D", "r1", "pl")} for h in straight.history]
    hb = [{k: v for k, v in h.items() if k in ("kimg", "loss_G", "loss_D", "r1", "pl")} for h in resumed.history]
    assert ha == hb and len(ha) >= 4


def test_run_folder_contents_and_snapshot_rotation(tmp_path):
    cfg = _tiny(kimg=0.024, snapshot_kimg=0.008, keep_snapshots=2)
    Trainer.start(cfg, _images(), tmp_path, progress=False).train()
    snaps = list_snapshots(tmp_path)
    assert [p.name for p in snaps] == ["snapshot-000000016.json", "snapshot-000000024.json"]
    assert len(list((tmp_path / "snapshots").glob("*.safetensors"))) == 2
    for name in ("reals.png", "loss.png", "config.json"):
        assert (tmp_path / name).is_file(), name
    assert len(list((tmp_path / "grids").glob("*.png"))) >= 1
    meta = json.loads(snaps[-1].read_text())
    assert meta["nimg"] == 24 and meta["step"] == 6 and meta["history"]
    from rig.stylegan2.checkpoints import load_networks

    nets = load_networks(tmp_path / "network-latest.safetensors")
    trainer = Trainer.resume(tmp_path, _images(), progress=False)
    z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(nets.G_ema(z, None, noise_mode="const"), trainer.sample(z))
    with pytest.raises(InputError, match="already holds"):
        Trainer.start(cfg, _images(), tmp_path, progress=False)


def test_bad_snapshot_and_bad_resume(tmp_path):
    with pytest.raises(CheckpointError, match="no snapshot"):
        Trainer.resume(tmp_path, _images())
    bad = tmp_path / "snapshots" / "snapshot-000000004.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    bad.with_suffix(".safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="snapshot-000000004"):
        Trainer.resume(tmp_path, _images())
    with pytest.raises(InputError, match="config wants"):
        Trainer.start(preset("tiny"), _images(size=8), tmp_path / "x", progress=False)


def test_image_grid_layout():
    from rig.stylegan2.training.report import image_grid

    x = torch.rand(5, 3, 4, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    g = image_grid(x)  # 5 images -> 3 columns x 2 rows
    assert g.shape == (8, 18, 3) and g.dtype == np.uint8
    ref = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(g[0:4, 6:12], ref[1])
    np.testing.assert_array_equal(g[4:8, 0:6], ref[3])
    np.testing.assert_array_equal(g[4:8, 12:18], 0)  # the empty sixth cell


def test_stop_request_snapshots_and_returns(tmp_path):
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) >= 3

    cfg = _tiny(kimg=0.064, snapshot_kimg=0.032)
    trainer = Trainer.start(cfg, _images(), tmp_path, progress=False)
    last = trainer.train(should_stop=stop_after_three)
    assert trainer.nimg == 12 and last.name == "snapshot-000000012.json"
    assert Trainer.resume(tmp_path, _images(), progress=False).nimg == 12


def test_start_from_trained_weights(tmp_path):
    from rig.stylegan2.checkpoints import NetworkSet, load_networks

    cfg = _tiny(kimg=0.008, snapshot_kimg=0.008)
    Trainer.start(cfg, _images(), tmp_path / "a", progress=False).train()
    nets = load_networks(tmp_path / "a" / "network-latest.safetensors")
    t = Trainer.start(cfg.replace(seed=5), _images(), tmp_path / "b", init=nets, progress=False)
    for name in ("G", "G_ema", "D"):
        for k, v in getattr(nets, name).state_dict().items():
            assert torch.equal(getattr(t, name).state_dict()[k], v), (name, k)
    assert t.nimg == 0
    # Only a G_ema (as shipped in rig/checkpoints/default): G starts from it too, D starts fresh.
    fresh_D = Trainer.start(cfg.replace(seed=5), _images(), tmp_path / "c", progress=False).D
    t = Trainer.start(cfg.replace(seed=5), _images(), tmp_path / "d", init=NetworkSet("ema-only", G_ema=nets.G_ema),
                      progress=False)
    assert torch.equal(t.G.synthesis.b16.conv1.weight, nets.G_ema.synthesis.b16.conv1.weight)
    assert torch.equal(t.D.b16.conv0.weight, fresh_D.b16.conv0.weight)
    with pytest.raises(InputError, match="does not have the architecture"):
        Trainer.start(cfg.replace(channel_max=cfg.channel_max * 2), _images(), tmp_path / "e", init=nets, progress=False)
    with pytest.raises(InputError, match="no generator"):
        Trainer.start(cfg, _images(), tmp_path / "f", init=NetworkSet("empty"), progress=False)


def test_g_freeze_trains_only_D_then_both(tmp_path):
    cfg = _tiny(kimg=0.016, snapshot_kimg=0.016, g_freeze_kimg=0.008)  # 2 frozen steps, then 2 joint ones
    t = Trainer.start(cfg, _images(), tmp_path, progress=False)
    g0 = {k: v.clone() for k, v in t.G.state_dict().items()}
    ema0 = {k: v.clone() for k, v in t.G_ema.state_dict().items()}
    d0 = t.D.b16.conv0.weight.clone()
    t._train_step()
    t._train_step()
    assert t.nimg == 8
    for k, v in t.G_ema.state_dict().items():
        assert torch.equal(v, ema0[k]), k
    weights = [k for k in g0 if "weight" in k]
    assert weights and all(torch.equal(t.G.state_dict()[k], g0[k]) for k in weights)
    assert not torch.equal(t.D.b16.conv0.weight, d0)
    t._train_step()  # nimg 8 >= 8: G trains again
    assert not torch.equal(t.G.synthesis.b16.conv1.weight, g0["synthesis.b16.conv1.weight"])
    assert not torch.equal(t.G_ema.synthesis.b16.conv1.weight, ema0["synthesis.b16.conv1.weight"])


def test_config_json_round_trip_with_preset_repeat():
    cfg = _tiny(g_freeze_kimg=2.5, preset_repeat=(("blink", 3), ("smile", 2)))
    again = type(cfg).from_json(json.loads(json.dumps(cfg.to_json())))
    assert again == cfg and again.preset_repeat == (("blink", 3), ("smile", 2))
    with pytest.raises(InputError, match="preset_repeat"):
        cfg.replace(preset_repeat=(("blink", 0),))
    with pytest.raises(InputError, match="g_freeze_kimg"):
        cfg.replace(g_freeze_kimg=-1.0)


def test_preset_repeat_order_and_parsing():
    from rig.stylegan2.training.run import parse_preset_repeat, repeat_presets

    assert parse_preset_repeat("blink=3, smile=2") == (("blink", 3), ("smile", 2))
    for bad in ("blink", "blink=0", "blink=x", "=2"):
        with pytest.raises(InputError, match="NAME=K"):
            parse_preset_repeat(bad)
    info = {"preset_names": ["anger", "blink", "smile"]}  # a WorldDataset's face, for five images
    ds = type("DS", (), {"root": "w", "info": info, "params": {"preset": np.array([-1, 1, 2, 1, 0])}, "__len__": lambda self: 5})()
    order = repeat_presets(ds, (("blink", 3), ("smile", 2)))
    assert order.tolist() == [0, 1, 1, 1, 2, 2, 3, 3, 3, 4]
    assert repeat_presets(ds, ()).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="'wink'"):
        repeat_presets(ds, (("wink", 2),))
    # A conditional run's classes may be named too (presets keep their own name).
    classes = (("none", "none+x", "anger", "blink", "smile"), torch.tensor([1, 3, 4, 3, 2]))
    assert repeat_presets(ds, (("none+x", 3), ("blink", 2)), classes).tolist() == [0, 0, 0, 1, 1, 2, 3, 3, 4]
    with pytest.raises(InputError, match="'none\\+y'.*none\\+x"):
        repeat_presets(ds, (("none+y", 2),), classes)
    bare = type("DS", (), {"root": "w", "info": {}, "params": {}, "__len__": lambda self: 5})()
    with pytest.raises(InputError, match="records its named presets"):
        repeat_presets(bare, (("blink", 2),))


# ---------------------------------------------------------------- the reading critic


class _MeanColourReader(torch.nn.Module):
    """A frozen reader: mean colour of each image quadrant, (N, 3 * 4) - differentiable, no parameters."""

    def forward(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)


def test_r1_of_linear_reading_critic_is_weight_norm():
    from rig.stylegan2.training.reading_d import ReadingDiscriminator

    w = torch.tensor([0.5, -2.0, 1.0])
    x = torch.randn(5, 3, requires_grad=True)
    assert torch.allclose(L.r1_penalty(x @ w, x), torch.full((5,), float(w.square().sum())))
    # ... and of the MLP critic: the brute-force gradient norm of its logit per sample.
    D = ReadingDiscriminator(3, hidden=8)
    x = torch.randn(4, 3, requires_grad=True)
    r1 = L.r1_penalty(D(x), x)
    for i in range(4):
        (g,) = torch.autograd.grad(D(x[i:i + 1]).sum(), x)
        assert torch.allclose(r1[i], g.square().sum(), atol=1e-6)


def test_reading_critic_standardises_its_input():
    from rig.stylegan2.training.reading_d import ReadingDiscriminator

    g = torch.Generator().manual_seed(0)
    # Three readings with stds 2, 0.5 and 0 (a reading the data never moves) and means 1, -3, 7.
    x = torch.randn((4000, 3), generator=g) * torch.tensor([2.0, 0.5, 0.0]) + torch.tensor([1.0, -3.0, 7.0])
    D = ReadingDiscriminator(3, hidden=4)
    D.fit_input(x)
    assert torch.allclose(D.shift, torch.tensor([1.0, -3.0, 7.0]), atol=0.1)
    assert torch.allclose(D.scale[:2], torch.tensor([2.0, 0.5]), rtol=0.05)
    assert torch.isclose(D.scale[2], 0.1 * x.std(0).median(), rtol=1e-6)  # floored, not 0
    # The MLP sees standardised readings: a plain MLP given them by hand agrees.
    plain = torch.nn.Sequential(*D.net)
    assert torch.allclose(D(x[:5]), plain((x[:5] - D.shift) / D.scale))
    with pytest.raises(ValueError, match="N >= 2"):
        D.fit_input(x[:1])


def test_reading_critic_run_resumes_bit_exactly(tmp_path):
    imgs = _images()
    cfg = _tiny(kimg=0.032, snapshot_kimg=0.016, reader="mean-colour", reader_weight=0.5)
    straight, _ = run_straight_and_resumed(cfg, imgs, tmp_path, reader=_MeanColourReader())
    a = assert_same_snapshots(tmp_path / "a", tmp_path / "b")
    assert any(k.startswith("D_read.") for k in a) and any(k.startswith("opt_D_read.") for k in a)
    keys = {k for h in straight.history for k in h}
    assert {"loss_G_read", "loss_D_read", "r1_read"} <= keys
    with pytest.raises(InputError, match="no reader"):
        Trainer.resume(tmp_path / "b", imgs, progress=False)
    with pytest.raises(InputError, match="names reader ''"):
        Trainer.start(_tiny(), imgs, tmp_path / "c", progress=False, reader=_MeanColourReader())


def test_reading_critic_steers_G_only_through_its_weight(tmp_path):
    """reader_weight 0: G, D and G_ema move exactly as in a run without a reader (the critic trains
    beside them and draws no random numbers); weight > 0: G's update changes."""
    imgs = _images()
    cfg = _tiny(kimg=0.008)
    plain = Trainer.start(cfg, imgs, tmp_path / "a", progress=False)
    off = Trainer.start(cfg.replace(reader="r", reader_weight=0.0), imgs, tmp_path / "b", progress=False, reader=_MeanColourReader())
    on = Trainer.start(cfg.replace(reader="r", reader_weight=1.0), imgs, tmp_path / "c", progress=False, reader=_MeanColourReader())
    d_read0 = {k: v.clone() for k, v in off.D_read.state_dict().items()}
    for t in (plain, off, on):
        t._train_step()
        t._train_step()
    assert_same_networks(plain, off)
    assert not torch.equal(off.D_read.net[0].weight, d_read0["net.0.weight"])  # the critic itself trained
    assert not torch.equal(on.G.synthesis.b16.conv1.weight, plain.G.synthesis.b16.conv1.weight)


def test_config_reader_fields_round_trip_and_checks():
    cfg = _tiny(reader="runs/enc.safetensors", reader_weight=0.3, reader_r1_gamma=2.0)
    assert type(cfg).from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    with pytest.raises(InputError, match="reader_weight"):
        cfg.replace(reader_weight=-1.0)
