"""Shared pieces of the training-loop tests: tiny data and configs, and run-versus-run comparisons."""

import torch

from rig.stylegan2.training.config import preset
from rig.stylegan2.training.loop import Trainer
from rig.stylegan2.training.snapshot import list_snapshots, read_snapshot


def smooth_images(n=12, size=16, seed=0):
    """Smooth random colour fields (uint8) - enough structure for D to have something to see."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((n, 3, 4, 4), generator=g)
    return (torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) * 255).to(torch.uint8)


def tiny(**kw):
    return preset("tiny", pl_weight=2.0, **kw)


def snapshot_tensors(run_dir):
    """The tensors of the newest snapshot in ``run_dir``."""
    return read_snapshot(list_snapshots(run_dir)[-1]).tensors


def run_straight_and_resumed(cfg, imgs, tmp_path, **kw):
    """Train ``cfg`` to ``cfg.kimg`` in one go (folder a) and in two halves with a resume between
    (folder b); return both trainers. ``kw`` (e.g. reader) goes to every start and resume."""
    straight = Trainer.start(cfg, imgs, tmp_path / "a", progress=False, **kw)
    straight.train()
    Trainer.start(cfg.replace(kimg=cfg.kimg / 2), imgs, tmp_path / "b", progress=False, **kw).train()
    torch.manual_seed(12345)  # the global RNG must play no part
    resumed = Trainer.resume(tmp_path / "b", imgs, kimg=cfg.kimg, progress=False, **kw)
    resumed.train()
    return straight, resumed


def assert_same_snapshots(dir_a, dir_b):
    """The newest snapshots of two run folders hold the same tensor names and bit-identical values."""
    a, b = snapshot_tensors(dir_a), snapshot_tensors(dir_b)
    assert sorted(a) == sorted(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return a


def assert_same_networks(a, b, names=("G", "D", "G_ema")):
    """Trainers ``a`` and ``b`` hold bit-identical ``names`` networks."""
    for name in names:
        for k, v in getattr(a, name).state_dict().items():
            assert torch.equal(getattr(b, name).state_dict()[k], v), (name, k)
