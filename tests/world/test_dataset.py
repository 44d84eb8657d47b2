"""World dataset format: shards written and read back unchanged, unfinished shards ignored, bad input refused."""

import numpy as np
import pytest
import torch

from rig.errors import InputError
from rig.world import dataset as wd


def _shard_data(rng, n, size, first):
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    params = {
        "expression": rng.standard_normal((n, 52)).astype(np.float32),
        "landmarks_2d": rng.uniform(0, size, (n, 68, 2)).astype(np.float32),
        "hair_style": rng.integers(0, 4, n),
        "seed": np.arange(first, first + n, dtype=np.int64) * 7,
    }
    return images, np.arange(first, first + n), params


def test_round_trip_two_shards_exact(tmp_path):
    rng = np.random.default_rng(0)
    wd.write_info(tmp_path, {"resolution": 16, "shard_size": 3})
    parts = [_shard_data(rng, 3, 16, 0), _shard_data(rng, 2, 16, 3)]
    for s, (imgs, idx, params) in enumerate(parts):
        wd.write_shard(tmp_path, s, imgs, idx, params)
        assert wd.shard_done(tmp_path, s)
    ds = wd.WorldDataset(tmp_path)
    assert len(ds) == 5 and ds.resolution == 16
    all_imgs = np.concatenate([p[0] for p in parts])
    for key in parts[0][2]:
        np.testing.assert_array_equal(ds.params[key], np.concatenate([p[2][key] for p in parts]))
        assert ds.params[key].dtype == parts[0][2][key].dtype
    for i in range(5):
        img, params = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (3, 16, 16)
        np.testing.assert_array_equal(img.permute(1, 2, 0).numpy(), all_imgs[i])
        np.testing.assert_array_equal(params["landmarks_2d"].numpy(), ds.params["landmarks_2d"][i])
    np.testing.assert_array_equal(ds.load_images(progress=False).permute(0, 2, 3, 1).numpy(), all_imgs)


def test_unfinished_shard_is_ignored(tmp_path):
    rng = np.random.default_rng(1)
    wd.write_info(tmp_path, {"resolution": 8})
    imgs, idx, params = _shard_data(rng, 2, 8, 0)
    wd.write_shard(tmp_path, 0, imgs, idx, params)
    imgs, idx, params = _shard_data(rng, 2, 8, 2)
    wd.write_shard(tmp_path, 1, imgs, idx, params)
    (wd.shard_path(tmp_path, 1) / wd.PARAMS_FILE).unlink()  # as if killed before the marker
    assert not wd.shard_done(tmp_path, 1)
    assert len(wd.WorldDataset(tmp_path)) == 2


def test_bad_inputs_raise_input_error(tmp_path):
    rng = np.random.default_rng(2)
    imgs, idx, params = _shard_data(rng, 3, 8, 0)
    with pytest.raises(InputError, match="leading length"):
        wd.write_shard(tmp_path, 0, imgs, idx, dict(params, seed=np.zeros(2)))
    with pytest.raises(InputError, match="uint8"):
        wd.write_shard(tmp_path, 0, imgs.astype(np.float32), idx, params)
    with pytest.raises(InputError, match="dataset.json"):
        wd.WorldDataset(tmp_path)
    wd.write_info(tmp_path, {"resolution": 16})
    wd.write_shard(tmp_path, 0, imgs, idx, params)
    with pytest.raises(InputError, match="resolution is 16"):
        wd.WorldDataset(tmp_path)[0]
    with pytest.raises(InputError, match="no parameter"):
        wd.WorldDataset(tmp_path, keys=["shape"])
