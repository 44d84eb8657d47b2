"""Snapshots in NVIDIA's pickle format for configurations beyond the fixture load into identical networks."""

import sys

import pytest
import torch

from rig.stylegan2.checkpoints import load_nvidia_pkl
from rig.stylegan2.config import DiscriminatorConfig, GeneratorConfig
from rig.stylegan2.networks import Discriminator, Generator

from .nvidia_format import nvidia_snapshot_bytes

CASES = {
    # conditional, fp16 + clamp, as train.py's 'paper256'-style configs write them
    "cond_fp16_clamp": (
        dict(z_dim=16, c_dim=4, w_dim=16, img_resolution=32, img_channels=3,
             mapping_kwargs={"num_layers": 2},
             synthesis_kwargs={"channel_base": 256, "channel_max": 16, "num_fp16_res": 2, "conv_clamp": 256}),
        dict(c_dim=4, img_resolution=32, img_channels=3, channel_base=256, channel_max=16, num_fp16_res=2,
             conv_clamp=256, block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 2})),
    # legacy.py's TF conversion spells every option out; resnet G, orig D, grayscale
    "tf_converted_resnet": (
        dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1,
             mapping_kwargs={"num_layers": 3, "embed_features": None, "layer_features": None, "activation": "lrelu",
                             "lr_multiplier": 0.01, "w_avg_beta": 0.995},
             synthesis_kwargs={"channel_base": 128, "channel_max": 8, "num_fp16_res": 0, "conv_clamp": None,
                               "architecture": "resnet", "resample_filter": [1, 3, 3, 1], "use_noise": True,
                               "activation": "lrelu"}),
        dict(c_dim=0, img_resolution=16, img_channels=1, architecture="orig", channel_base=128, channel_max=8,
             num_fp16_res=0, conv_clamp=None, cmap_dim=None,
             block_kwargs={"activation": "lrelu", "resample_filter": [1, 3, 3, 1], "freeze_layers": 0},
             mapping_kwargs={"num_layers": 0, "embed_features": None, "layer_features": None,
                             "activation": "lrelu", "lr_multiplier": 0.1},
             epilogue_kwargs={"mbstd_group_size": None, "mbstd_num_channels": 1, "activation": "lrelu"})),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nvidia_format_snapshot_round_trip(case, tmp_path):
    g_kwargs, d_kwargs = CASES[case]
    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_nvidia_kwargs(g_kwargs)).eval()
    D = Discriminator(DiscriminatorConfig.from_nvidia_kwargs(d_kwargs)).eval()
    with torch.no_grad():
        for net in (G, D):
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(nvidia_snapshot_bytes({"G_ema": G, "D": D}, {"G_ema": g_kwargs, "D": d_kwargs},
                                           training_set_kwargs={"class_name": "training.dataset.ImageFolderDataset",
                                                                "resolution": g_kwargs["img_resolution"]}))
    for mod in [m for m in sys.modules if m.startswith(("torch_utils", "dnnlib"))]:
        del sys.modules[mod]
    nets = load_nvidia_pkl(path)
    assert not any(m.startswith(("torch_utils", "dnnlib")) for m in sys.modules)  # nothing imported
    assert nets.G is None and nets.training_set_kwargs["resolution"] == g_kwargs["img_resolution"]
    assert nets.G_ema.config == G.config and nets.D.config == D.config
    z = torch.randn(2, g_kwargs["z_dim"])
    c = torch.eye(max(g_kwargs["c_dim"], 1))[:2, :g_kwargs["c_dim"]] if g_kwargs["c_dim"] else None
    with torch.no_grad():
        a = G(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="const", impl="ref")
        b = nets.G_ema(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="const", impl="ref")
        assert torch.equal(a, b)
        assert torch.equal(D(a, c, impl="ref"), nets.D(a, c, impl="ref"))
        fast = nets.G_ema(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="const", impl="fast")
        assert (fast - a).abs().max() <= 1e-4


def test_unknown_constructor_argument_is_refused(tmp_path):
    from rig.errors import CheckpointError

    g_kwargs = dict(CASES["cond_fp16_clamp"][0])
    g_kwargs["synthesis_kwargs"] = {**g_kwargs["synthesis_kwargs"], "magic_option": 3}
    G = Generator(GeneratorConfig.from_nvidia_kwargs(CASES["cond_fp16_clamp"][0]))
    path = tmp_path / "s.pkl"
    path.write_bytes(nvidia_snapshot_bytes({"G_ema": G}, {"G_ema": g_kwargs}))
    with pytest.raises(CheckpointError, match="magic_option"):
        load_nvidia_pkl(path)
