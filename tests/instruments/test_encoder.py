"""Face-parameter encoder: learns a tiny image->parameter mapping, metrics on analytic cases, file round trip."""

import numpy as np
import pytest
import torch

from rig.errors import CheckpointError, ShapeError
from rig.instruments.encoder import EncoderConfig, FaceEncoder, landmark_nme_iod, load_encoder, save_encoder
from rig.instruments.encoder_train import EncoderTrainConfig, evaluate_encoder, shuffle_tiles, train_encoder


def _blob_world(n, size=32, n_expr=4, seed=0):
    """Images of a bright disc whose centre sets the landmarks and the 'yaw'/'pitch' targets."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0.3, 0.7, (n, 2)) * size
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    d2 = (xx[None] - centre[:, 0, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None]) ** 2
    img = np.clip(40 + 200 * np.exp(-d2 / (2 * (size / 10) ** 2)), 0, 255).astype(np.uint8)
    images = torch.from_numpy(np.repeat(img[:, None], 3, axis=1))
    template = rng.uniform(-size / 8, size / 8, (68, 2))
    params = {
        "expression": rng.standard_normal((n, n_expr)).astype(np.float32) * 0.1,
        "jaw_pose": np.zeros((n, 3), np.float32),
        "head_ypr": np.stack([centre[:, 0] / size - 0.5, centre[:, 1] / size - 0.5, np.zeros(n)], 1).astype(np.float32),
        "landmarks_2d": (centre[:, None, :] + template[None]).astype(np.float32),
    }
    return images, params


@pytest.mark.parametrize("spatial_head", [0, 32])
def test_loss_drops_on_tiny_set(spatial_head):
    images, params = _blob_world(96)
    cfg = EncoderConfig(input_size=32, widths=(8, 16, 32), n_expression=4, spatial_head=spatial_head)
    enc, report, losses = train_encoder(images, params, cfg, EncoderTrainConfig(steps=60, batch=16, lr=3e-3, holdout=16), progress=False)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.6 * first, (first, last)
    # The disc position is learnable: held-out yaw error must beat the spread of yaw itself (~8 deg).
    spread = np.degrees(np.abs(params["head_ypr"][-16:, 0] - params["head_ypr"][:-16, 0].mean()).mean())
    assert report.yaw_deg < spread, (report.yaw_deg, spread)
    assert report.n == 16


def test_landmark_nme_analytic():
    true = torch.zeros(1, 68, 2)
    true[0, 36] = torch.tensor([10.0, 20.0])
    true[0, 45] = torch.tensor([30.0, 20.0])  # inter-ocular distance 20 px
    pred = true + torch.tensor([3.0, 4.0])     # every point off by 5 px
    assert torch.allclose(landmark_nme_iod(pred, true), torch.tensor([0.25]))


def test_shuffle_tiles_permutes_blocks():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    y = shuffle_tiles(x, 2, torch.Generator().manual_seed(0))
    blocks = lambda t: sorted(tuple(t[:, i:i + 4, j:j + 4].flatten().tolist()) for i in (0, 4) for j in (0, 4))
    for b in range(2):
        assert blocks(x[b]) == blocks(y[b])
    assert not torch.equal(x, y)  # 2 images x 4 tiles: the identity order has chance 1/576


@pytest.mark.parametrize("spatial_head", [0, 16])
def test_save_load_round_trip(tmp_path, spatial_head):
    torch.manual_seed(0)
    enc = FaceEncoder(EncoderConfig(input_size=16, widths=(4, 8), n_expression=3, spatial_head=spatial_head)).eval()
    enc.target_mean.normal_()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    save_encoder(enc, tmp_path / "enc.safetensors")
    back = load_encoder(tmp_path / "enc.safetensors")
    for a, b in zip(enc(x), back(x)):
        assert torch.equal(a, b)
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_encoder(tmp_path / "bad.safetensors")


def test_spatial_head_reads_the_whole_last_feature_map():
    # 16 px through two stride-2 stages leaves 4 x 4 cells; the head sees all of them (32 channels each).
    enc = FaceEncoder(EncoderConfig(input_size=16, widths=(4, 8), n_expression=1, spatial_head=8)).eval()
    assert enc.head[3].in_features == 32 * 4 * 4
    with pytest.raises(ShapeError):
        FaceEncoder(EncoderConfig(input_size=20, widths=(4, 8, 16), n_expression=1, spatial_head=8))


def test_negatives_are_three_kinds_of_non_face():
    from rig.instruments.encoder_train import blur_away, colour_fields, make_negatives

    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 32, 32, generator=g) * 2 - 1
    neg = make_negatives(x, 4, g)
    assert neg.shape == x.shape and neg.abs().max() <= 1 + 1e-6
    blurred = blur_away(x, torch.Generator().manual_seed(1))
    # at most 8x8 worth of detail: pooling to 8 px and back changes it far less than it changes x
    again = torch.nn.functional.interpolate(torch.nn.functional.adaptive_avg_pool2d(blurred, 8), size=32,
                                            mode="bilinear", align_corners=False)
    assert (again - blurred).abs().mean() < 0.1 * (x - blurred).abs().mean()
    assert torch.allclose(blurred.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.05)  # colours kept
    fields = colour_fields(4, 32, g)
    assert fields.shape == (4, 3, 32, 32) and fields.std() > 0.1


def test_reader_is_the_frozen_standardised_parameter_readings(tmp_path):
    from rig.instruments.encoder import load_reader

    torch.manual_seed(0)
    enc = FaceEncoder(EncoderConfig(input_size=16, widths=(4, 8), n_expression=3, spatial_head=16))
    enc.target_mean.normal_()
    enc.target_std.uniform_(0.5, 2.0)
    for m in enc.modules():  # batch-norm statistics that differ from a batch's own
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    save_encoder(enc.eval(), tmp_path / "enc.safetensors")
    reader = load_reader(tmp_path / "enc.safetensors")
    reader.train()  # must not switch batch norm to batch statistics
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    r = reader(x)
    out = enc.eval()(x)
    # Readings = the decoded expression, jaw and head pose, standardised back by the stored statistics.
    std, mean = enc.target_std[:9], enc.target_mean[:9]
    decoded = torch.cat([out.expression, out.jaw_pose, out.head_ypr], 1)
    assert r.shape == (4, 9) and torch.allclose(r * std + mean, decoded, atol=1e-5)
    r.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in reader.parameters())
