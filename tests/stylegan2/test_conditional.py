"""Class-conditional training: lifting an unconditional file, labels in the loop, labels in network
files, and sampling labels by the stored class prior."""

import json

import numpy as np
import pytest
import torch

from rig.errors import CheckpointError, InputError
from rig.stylegan2.checkpoints import convert, load_generator, save_networks
from rig.stylegan2.generate import GenerateConfig, class_prior, generate_images, sample_labels, seed_label, seed_latent
from rig.stylegan2.mapping import normalize_2nd_moment
from rig.stylegan2.training.data import ImageStream, mirrored_classes
from rig.stylegan2.training.loop import Trainer, build_networks, lift_to_conditional, relabel_conditional
from rig.stylegan2.training.run import preset_labels, state_labels

from .training_helpers import assert_same_snapshots, run_straight_and_resumed, smooth_images, tiny

CLASSES = ("none", "a", "b")


def _labels(n=12):
    return torch.arange(n) % 3


def _conditional(**kw):
    return tiny(class_names=CLASSES, class_prior=(0.5, 0.25, 0.25), **kw)


def _one_hot(classes):
    return torch.nn.functional.one_hot(torch.as_tensor(classes), 3).float()


def test_lifted_generator_draws_what_the_unconditional_one_drew_for_every_label():
    G, D = build_networks(tiny())
    Gc, Dc = build_networks(_conditional())
    lift_to_conditional(Gc, G, label_scale=0.0)
    lift_to_conditional(Dc, D)
    z = torch.randn(6, G.z_dim)
    ref = G(z, None, noise_mode="const")
    for k in range(3):
        out = Gc(z, _one_hot([k] * 6), noise_mode="const")
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # By default the label columns keep their fresh weights times 0.5 (a fixed offset per class in W,
    # 0.25 of z's variance in expectation), and the z part of every w is the source's.
    Gs, _ = build_networks(_conditional())
    fresh = Gs.mapping.fc0.weight.detach().clone()
    lift_to_conditional(Gs, G)
    with torch.no_grad():
        fc0, fc0_src = Gs.mapping.fc0, G.mapping.fc0
        assert torch.equal(fc0.weight[:, G.z_dim:], fresh[:, G.z_dim:] * 0.5)
        zn = normalize_2nd_moment(z)
        w_z = zn @ (fc0.weight[:, :G.z_dim] * fc0.weight_gain).T
        torch.testing.assert_close(w_z, zn @ (fc0_src.weight * fc0_src.weight_gain).T, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(Gs(z, _one_hot([1] * 6), noise_mode="const"), Gs(z, _one_hot([2] * 6), noise_mode="const"))
    # D's trunk is copied; its label mapping and output projection are new.
    for key, value in D.state_dict().items():
        if not key.startswith("b4.out."):
            assert torch.equal(Dc.state_dict()[key], value), key
    assert Dc.b4.out.weight.shape[0] > 1 and any(k.startswith("mapping.") for k in Dc.state_dict())
    # Another architecture is refused.
    G_wide, _ = build_networks(tiny(channel_max=32))
    with pytest.raises(RuntimeError, match="shape"):
        lift_to_conditional(Gc, G_wide)


def test_stream_indices_name_the_images_they_came_from_and_say_which_are_mirrored():
    # Image i is 40 * i in its left column and 40 * i + 20 in its right one, so a mirror shows.
    imgs = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).repeat(1, 3, 2, 2) * 40
    imgs[..., 1] += 20
    stream = ImageStream(imgs, seed=3, xflip=True)
    seen = []
    for _ in range(4):  # crosses two epochs of 10 items
        batch, idx, mirrored = stream.next_indexed(3)
        assert idx.max() < 5
        left = ((batch[:, 0, 0, 0] + 1) * 127.5).round().long()
        assert torch.equal(left, idx * 40 + 20 * mirrored.long())
        seen += list(zip(idx.tolist(), mirrored.tolist()))
    assert sorted(seen[:10]) == [(i, m) for i in range(5) for m in (False, True)]  # one epoch: each image both ways


def test_mirrored_classes_swap_left_and_right_twins():
    assert mirrored_classes(("none", "wink_left", "smile", "wink_right")).tolist() == [0, 3, 2, 1]
    assert mirrored_classes(("left", "right", "leftover")).tolist() == [1, 0, 2]  # whole words only
    with pytest.raises(InputError, match="brow_left"):
        mirrored_classes(("none", "brow_left"))
    # Words between '+' and '_' swap too ('preset+state' names).
    names = ("none+left_eye_closed+jaw", "none+jaw", "none+right_eye_closed+jaw", "none+left_eye_closed")
    with pytest.raises(InputError, match="none\\+right_eye_closed'"):
        mirrored_classes(names)
    assert mirrored_classes(names[:3]).tolist() == [2, 1, 0]


def test_a_mirrored_real_image_takes_its_twin_class(tmp_path):
    names = ("none", "wink_left", "wink_right")
    idx = torch.tensor([0, 1, 2, 3, 4, 5])
    mirrored = torch.tensor([True, True, True, False, False, False])
    labels = torch.tensor([1, 2, 0, 1, 2, 0] * 2)
    for xflip, expect in ((True, [2, 1, 0, 1, 2, 0]), (False, [1, 2, 0, 1, 2, 0])):
        cfg = tiny(class_names=names, class_prior=(0.5, 0.25, 0.25), xflip=xflip)
        t = Trainer.start(cfg, smooth_images(), tmp_path / str(xflip), progress=False, labels=labels)
        assert t._real_classes(idx, mirrored).tolist() == expect


def test_conditional_run_labels_reals_and_fakes_by_the_data(tmp_path):
    imgs = smooth_images()
    labels = torch.tensor([0] * 8 + [1] * 3 + [2] * 1)
    t = Trainer.start(_conditional(kimg=0.008), imgs, tmp_path, progress=False, labels=labels)
    drawn = t._fake_labels(12000).sum(0) / 12000  # fakes get the labels of uniformly drawn images
    torch.testing.assert_close(drawn, torch.tensor([8, 3, 1]) / 12, atol=0.015, rtol=0)
    assert t.grid_c.argmax(1).tolist() == [0, 1, 2, 0]  # the sample grid shows every class in turn
    with pytest.raises(InputError, match="labels"):
        Trainer.start(_conditional(), imgs, tmp_path / "x", progress=False)
    with pytest.raises(InputError, match="labels"):
        Trainer.start(tiny(), imgs, tmp_path / "y", progress=False, labels=labels)
    with pytest.raises(InputError, match="class indices"):
        Trainer.start(_conditional(), imgs, tmp_path / "z", progress=False, labels=labels + 1)


def test_conditional_run_resumes_bit_exactly_and_stores_its_labels(tmp_path):
    cfg = _conditional(kimg=0.032, snapshot_kimg=0.016)
    run_straight_and_resumed(cfg, smooth_images(), tmp_path, labels=_labels())
    a = assert_same_snapshots(tmp_path / "a", tmp_path / "b")
    assert "G.mapping.embed.weight" in a and "D.mapping.embed.weight" in a
    G = load_generator(tmp_path / "a" / "network-latest.safetensors")
    assert G.c_dim == 3 and G.class_names == CLASSES and G.class_prior == (0.5, 0.25, 0.25)
    # `rig convert --only G_ema` (how a generator ships) keeps them.
    convert(tmp_path / "a" / "network-latest.safetensors", tmp_path / "g.safetensors", only=("G_ema",))
    assert load_generator(tmp_path / "g.safetensors").class_prior == (0.5, 0.25, 0.25)


def test_config_labels_round_trip_and_checks():
    cfg = _conditional()
    assert type(cfg).from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    for bad in (dict(class_names=("only",), class_prior=()), dict(class_names=("a", "a"), class_prior=()),
                dict(class_prior=(0.5, 0.5, 0.5)), dict(class_prior=(0.5, 0.5))):
        with pytest.raises(InputError, match="class"):
            cfg.replace(**bad)


def test_corrupt_labels_header_is_refused(tmp_path):
    G, _ = build_networks(_conditional())
    path = tmp_path / "g.safetensors"
    save_networks(path, {"G_ema": G}, extra={"labels": {"class_names": ["a", "b"], "class_prior": [0.5, 0.5]}})
    with pytest.raises(CheckpointError, match="c_dim"):
        load_generator(path)


def test_labels_by_seed_and_by_generator():
    G, _ = build_networks(_conditional())
    G.class_prior = (0.5, 0.25, 0.25)
    np.testing.assert_array_equal(class_prior(G), [0.5, 0.25, 0.25])
    labels = np.concatenate([seed_label(s, G) for s in range(4000)])
    assert (labels.sum(1) == 1).all()
    np.testing.assert_allclose(labels.mean(0), [0.5, 0.25, 0.25], atol=0.03)
    assert np.array_equal(seed_label(7, G), seed_label(7, G))
    c = sample_labels(G, 4000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(c.mean(0), torch.tensor([0.5, 0.25, 0.25]), atol=0.03, rtol=0)
    G_plain, _ = build_networks(tiny())
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert sample_labels(G_plain, 5, gen) is None and torch.equal(gen.get_state(), state)  # nothing drawn


def test_generate_draws_a_label_per_seed_from_the_stored_prior(tmp_path):
    G, _ = build_networks(_conditional())
    with torch.no_grad():
        G.mapping.fc0.weight[:, G.z_dim:] *= 50  # make the label matter
    save_networks(tmp_path / "c.safetensors", {"G_ema": G},
                  extra={"labels": {"class_names": list(CLASSES), "class_prior": [0.0, 0.0, 1.0]}})
    generate_images(GenerateConfig(network=str(tmp_path / "c.safetensors"), outdir=tmp_path / "o", seeds=(3,)),
                    progress=False)
    from PIL import Image

    got = np.asarray(Image.open(tmp_path / "o" / "seed0003.png"))
    G.eval()
    with torch.no_grad():
        ref = G(torch.from_numpy(seed_latent(3, G.z_dim)), _one_hot([2]), noise_mode="const")
    want = (ref.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    np.testing.assert_array_equal(got, want)
    save_networks(tmp_path / "n.safetensors", {"G_ema": G})  # no stored prior: a class must be named
    with pytest.raises(InputError, match="--class"):
        generate_images(GenerateConfig(network=str(tmp_path / "n.safetensors"), outdir=tmp_path / "p"), progress=False)


def test_preset_labels_of_a_world_dataset():
    ds = type("DS", (), {"root": "w", "info": {"preset_names": ["smile", "blink"]},
                         "params": {"preset": np.array([-1, 1, -1, 0, -1, 1])}})()
    names, labels, prior = preset_labels(ds)
    assert names == ("none", "smile", "blink")
    assert labels.tolist() == [0, 2, 0, 1, 0, 2]
    np.testing.assert_allclose(prior, [0.5, 1 / 6, 1 / 3])
    with pytest.raises(InputError, match="named presets"):
        preset_labels(type("DS", (), {"root": "w", "info": {}, "params": {}})())


def test_state_labels_split_none_by_closed_eyes_and_a_dropped_jaw():
    units = ["browDownLeft", "eyeBlinkLeft", "eyeBlinkRight"]
    rng = np.random.default_rng(0)
    n = 400
    expr = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    jaw = np.zeros((n, 3), np.float32)
    jaw[:, 0] = rng.uniform(0, 0.3, n)
    drawn = rng.integers(-1, 2, n)
    expr[:4, 1:], jaw[:4, 0], drawn[:4] = [[0.3, 0.3], [0.3, 0.29], [0.29, 0.3], [0.9, 0.9]], [0.15, 0.1, 0.149, 0.2], -1
    ds = type("DS", (), {"root": "w", "info": {"preset_names": ["smile", "blink"], "expression_names": units},
                         "params": {"preset": drawn, "expression": expr, "jaw_pose": jaw}})()
    names, labels, prior = state_labels(ds)
    assert names == ("none", "none+eyes_closed", "none+left_eye_closed", "none+right_eye_closed", "none+jaw",
                     "none+eyes_closed+jaw", "none+left_eye_closed+jaw", "none+right_eye_closed+jaw", "smile", "blink")
    assert labels[:4].tolist() == [5, 2, 3, 5]  # thresholds 0.3 and 0.15 rad are inclusive
    for i in range(n):  # the names say what each image shows
        name = names[labels[i]]
        if drawn[i] >= 0:
            assert name == ["smile", "blink"][drawn[i]]
            continue
        left, right = expr[i, 1] >= 0.3, expr[i, 2] >= 0.3
        assert ("eyes_closed" in name) == (left and right)
        assert ("left_eye_closed" in name) == (left and not right)
        assert ("right_eye_closed" in name) == (right and not left)
        assert name.endswith("+jaw") == (jaw[i, 0] >= 0.15)
    np.testing.assert_allclose(prior, np.bincount(labels.numpy(), minlength=10) / n)
    assert mirrored_classes(names)[[2, 3, 6, 7]].tolist() == [3, 2, 7, 6]
    ds.info["expression_names"] = units[:2]
    with pytest.raises(InputError, match="eyeBlinkRight"):
        state_labels(ds)


def test_relabelled_network_draws_a_refined_class_as_the_file_drew_its_parent(tmp_path):
    G, D = build_networks(_conditional())
    refined = ("none", "none+x", "a", "b+y", "b")
    G2, D2 = build_networks(tiny(class_names=refined, class_prior=(0.2,) * 5))
    relabel_conditional(G2, G, refined, CLASSES, label_scale=0.0)
    relabel_conditional(D2, D, refined, CLASSES, label_scale=0.0)
    z = torch.randn(6, G.z_dim)
    parent = [0, 0, 1, 2, 2]
    imgs = G(z, _one_hot([0] * 6), noise_mode="const")
    for k, p in enumerate(parent):
        c2 = torch.nn.functional.one_hot(torch.full((6,), k), 5).float()
        torch.testing.assert_close(G2(z, c2, noise_mode="const"), G(z, _one_hot([p] * 6), noise_mode="const"),
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(D2(imgs, c2), D(imgs, _one_hot([p] * 6)), atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="'c\\+x'"):
        relabel_conditional(G2, G, ("none", "c+x", "a", "b", "b+y"), CLASSES)
    # Trainer.start picks it for a file whose classes the run refines; by default a refined class
    # starts at a fixed offset from its parent, a kept class exactly as it was.
    save_networks(tmp_path / "n.safetensors", {"G": G, "G_ema": G, "D": D},
                  extra={"labels": {"class_names": list(CLASSES), "class_prior": [0.5, 0.25, 0.25]}})
    from rig.stylegan2.checkpoints import load_networks
    t = Trainer.start(tiny(class_names=refined, class_prior=(0.2,) * 5), smooth_images(), tmp_path / "run", progress=False,
                      labels=torch.arange(12) % 5, init=load_networks(tmp_path / "n.safetensors"))
    for k, p in enumerate(parent):
        c2 = torch.nn.functional.one_hot(torch.full((6,), k), 5).float()
        diff = (t.G_ema(z, c2, noise_mode="const") - G(z, _one_hot([p] * 6), noise_mode="const")).abs().max()
        assert (diff > 1e-3) if "+" in refined[k] else (diff < 1e-5), (refined[k], float(diff))


def _marked(n=24, size=16, seed=0):
    """Smooth images whose class k in 0..2 is a bright square in corner k: a label one can see."""
    imgs = smooth_images(n, size, seed) // 2
    classes = torch.arange(n) % 3
    for i, k in enumerate(classes.tolist()):
        r, c = divmod(k, 2)
        imgs[i, :, r * 8:r * 8 + 6, c * 8:c * 8 + 6] = 250
    return imgs, classes


def test_wrong_classes_are_drawn_uniformly_from_the_other_classes(tmp_path):
    imgs, classes = _marked()
    t = Trainer.start(_conditional(label_mismatch=1.0), imgs, tmp_path, progress=False, labels=classes)
    right = torch.arange(3).repeat(4000)
    wrong = t._wrong_classes(right)
    assert not (wrong == right).any()
    for k in range(3):
        counts = torch.bincount(wrong[right == k], minlength=3).double() / 4000
        torch.testing.assert_close(counts, torch.tensor([0.5, 0.5, 0.5]).index_fill(0, torch.tensor(k), 0.0),
                                   atol=0.03, rtol=0, check_dtype=False)


def test_a_matching_aware_D_learns_what_each_label_looks_like(tmp_path):
    # G stays frozen, so only D learns: with wrong-label reals as negatives it scores real images
    # higher under their own label than under another; without them it has no reason to.
    imgs, classes = _marked()
    x = imgs.float() / 127.5 - 1
    other = (classes + 1) % 3
    gaps = {}
    for weight in (0.0, 1.0):
        cfg = _conditional(kimg=0.4, snapshot_kimg=0.4, g_freeze_kimg=1.0, label_mismatch=weight, log_kimg=0.4)
        t = Trainer.start(cfg, imgs, tmp_path / str(weight), progress=False, labels=classes)
        t.train()
        with torch.no_grad():
            gaps[weight] = float((t.D(x, _one_hot(classes)) - t.D(x, _one_hot(other))).mean())
        assert ("mismatch_score" in t.history[-1]) == (weight > 0)
    assert gaps[1.0] > 1.0 and gaps[1.0] > 3 * abs(gaps[0.0])


def test_matching_aware_run_resumes_bit_exactly(tmp_path):
    imgs, classes = _marked(12)
    run_straight_and_resumed(_conditional(kimg=0.032, snapshot_kimg=0.016, label_mismatch=0.5), imgs, tmp_path,
                             labels=classes)
    assert_same_snapshots(tmp_path / "a", tmp_path / "b")
    with pytest.raises(InputError, match="label_mismatch"):
        tiny(label_mismatch=1.0).validate()
