"""Label guidance: a classifier of the real labels trained beside D, whose cross-entropy of the fakes
joins G's loss."""

import pytest
import torch

from rig.errors import InputError
from rig.stylegan2.training.label_guide import LabelClassifier, label_loss
from rig.stylegan2.training.loop import Trainer

from .training_helpers import assert_same_networks, assert_same_snapshots, run_straight_and_resumed, smooth_images, tiny

CLASSES = ("none", "a", "b")


def _guided(**kw):
    return tiny(class_names=CLASSES, class_prior=(0.5, 0.25, 0.25), **kw)


def _marked(n=24, size=16, seed=0):
    """Smooth images whose class k in 0..2 is a bright square in corner k (3 is unmarked)."""
    imgs = smooth_images(n, size, seed) // 2
    classes = torch.arange(n) % 3
    for i, k in enumerate(classes.tolist()):
        r, c = divmod(k, 2)
        imgs[i, :, r * 8:r * 8 + 6, c * 8:c * 8 + 6] = 250
    return imgs, classes


def test_classifier_learns_the_labels_of_a_small_set():
    torch.manual_seed(0)
    imgs, classes = _marked()
    x = imgs.float() / 127.5 - 1
    C = LabelClassifier(3, 16, 3, channel_base=256, channel_max=32)
    assert C(x).shape == (24, 3)
    opt = torch.optim.Adam(C.parameters(), lr=0.0025, betas=(0.0, 0.99))
    first = label_loss(C, x, classes)[0].detach()
    for _ in range(60):
        opt.zero_grad()
        loss, acc = label_loss(C, x, classes)
        loss.backward()
        opt.step()
    last, acc = (v.detach() for v in label_loss(C, x, classes))
    assert float(first) > 0.9 and float(last) < 0.1 * float(first)
    assert float(acc) == 1.0
    # Each image is judged alone (no minibatch statistics): a batch of one gives the same logits.
    torch.testing.assert_close(C(x[:1]), C(x)[:1], atol=1e-5, rtol=1e-5)


def test_label_guidance_changes_G_trains_the_classifier_and_resumes_bit_exactly(tmp_path):
    imgs, classes = _marked()
    cfg = _guided(kimg=0.032, snapshot_kimg=0.016, label_weight=1.0)
    straight, _ = run_straight_and_resumed(cfg, imgs, tmp_path, labels=classes)
    snap = assert_same_snapshots(tmp_path / "a", tmp_path / "b")
    assert any(k.startswith("C_label.") for k in snap)
    logged = {k for entry in straight.history for k in entry}
    assert {"loss_C_label", "accuracy_C_label", "loss_G_label"} <= logged
    # Weight 0 is the plain conditional run, and the weight moves G.
    plain = Trainer.start(cfg.replace(label_weight=0.0), imgs, tmp_path / "c", progress=False, labels=classes)
    plain.train()
    assert plain.C_label is None
    off = Trainer.start(_guided(kimg=0.032, snapshot_kimg=0.016), imgs, tmp_path / "d", progress=False, labels=classes)
    off.train()
    assert_same_networks(plain, off)
    guided_G, plain_G = straight.G.state_dict(), plain.G.state_dict()
    assert any(not torch.equal(v, plain_G[k]) for k, v in guided_G.items())


def test_label_weight_needs_labels():
    with pytest.raises(InputError, match="label_weight"):
        tiny(label_weight=1.0).validate()
    with pytest.raises(InputError, match="label_weight"):
        _guided(label_weight=-1.0).validate()
