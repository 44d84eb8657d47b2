"""Regressions from fuzzing world datasets (``dataset.json`` and a shard's ``params.npz``). The
parameter file was read with ``np.load``, which let ``zipfile.BadZipFile`` escape from 119 of the
first 150 mutated files and tokenize's ``TokenError`` / an ``AttributeError`` from 15 of 150 files
with mutated members; it now reads through ``rig.io.npy.read_npz``, ``dataset.json`` through the
bounded JSON reader, and every malformed form is an InputError naming the file."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from rig.errors import CheckpointError, InputError
from rig.world import dataset as wd


def _dataset(tmp_path, n=2, size=8):
    rng = np.random.default_rng(0)
    wd.write_info(tmp_path, {"resolution": size, "shard_size": n, "expression_names": ["jawOpen"]})
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    params = {"expression": rng.standard_normal((n, 3)).astype(np.float32), "seed": np.arange(n)}
    wd.write_shard(tmp_path, 0, images, np.arange(n), params)
    return tmp_path, images, params


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _write_params(root, members: dict[str, bytes]):
    path = wd.shard_path(root, 0) / wd.PARAMS_FILE
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _set_info(root, **changes):
    path = root / wd.INFO_FILE
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


def test_a_dataset_reads_back_through_rigs_reader(tmp_path):
    root, images, params = _dataset(tmp_path)
    ds = wd.WorldDataset(root)
    np.testing.assert_array_equal(ds.params["expression"], params["expression"])
    assert ds.params["expression"].dtype == np.float32 and ds.params["index"].tolist() == [0, 1]
    np.testing.assert_array_equal(ds.load_images(progress=False).permute(0, 2, 3, 1).numpy(), images)


@pytest.mark.parametrize("damage", ["truncate", "crc", "not_zip"])
def test_a_damaged_params_zip_is_an_input_error_naming_it(tmp_path, damage):
    root, _, _ = _dataset(tmp_path)
    path = wd.shard_path(root, 0) / wd.PARAMS_FILE
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "crc":  # one byte of the expression data: zipfile's CRC-32 check raises BadZipFile
        raw[raw.index(b"\x93NUMPY") + 130] ^= 1
    else:
        raw[:4] = b"XXXX"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="params.npz: not a readable .npz") as e:
        wd.WorldDataset(root)
    assert not isinstance(e.value, CheckpointError)  # a dataset is user input, not a model


def test_a_params_member_with_a_broken_npy_header_is_an_input_error(tmp_path):
    root, _, _ = _dataset(tmp_path)
    header = _npy(np.arange(2)).replace(b"'shape': (2,)", b"'shape': (2,")  # tokenize's TokenError in np.load
    _write_params(root, {"index.npy": _npy(np.arange(2)), "seed.npy": header})
    with pytest.raises(InputError, match=r"params.npz \[seed.npy\]: unreadable .npy header"):
        wd.WorldDataset(root)


@pytest.mark.parametrize("members, match", [
    ({"index.npy": _npy(np.arange(2)), "notes.txt": b"hello"}, "'notes.txt' is not a .npy array"),
    ({"seed.npy": _npy(np.arange(2))}, "no 'index' array"),
    ({"index.npy": _npy([[0, 1]])}, "'index' must be \\(n,\\) non-negative integers"),
    ({"index.npy": _npy([0.0, 1.0])}, "'index' must be \\(n,\\) non-negative integers"),
    ({"index.npy": _npy([0, -1])}, "'index' must be \\(n,\\) non-negative integers"),
    ({"index.npy": _npy([0, 1]), "seed.npy": _npy([1, 2, 3])}, "'seed' has shape \\(3,\\), expected leading length 2"),
    ({"index.npy": _npy([0, 1]), "expression.npy": _npy([[0.0], [np.nan]])}, "'expression' holds NaN or infinite"),
    ({"index.npy": _npy([0, 1]), "seed.npy": _npy(np.array(["a", "b"]))}, "dtype '<U1' refused"),
])
def test_malformed_params_members_are_input_errors(tmp_path, members, match):
    root, _, _ = _dataset(tmp_path)
    _write_params(root, members)
    with pytest.raises(InputError, match=match):
        wd.WorldDataset(root)


def test_shards_with_other_per_image_shapes_are_refused_before_concatenating(tmp_path):
    root, images, params = _dataset(tmp_path)
    wd.write_shard(root, 1, images, np.arange(2, 4), dict(params, expression=np.zeros((2, 4), np.float32)))
    with pytest.raises(InputError, match=r"shard-00001/params.npz: 'expression' is \(4,\) float32 per image, "
                                         r"the first shard's is \(3,\) float32"):
        wd.WorldDataset(root)


@pytest.mark.parametrize("change, match", [
    ({"resolution": "64"}, "resolution '64' is not a power of two in 8..4096"),
    ({"resolution": 48}, "resolution 48 is not a power of two"),
    ({"resolution": 1 << 20}, "resolution 1048576 is not a power of two in 8..4096"),
    ({"resolution": True}, "resolution True is not"),
    ({"format_version": "1"}, "format_version '1' is not a non-negative integer"),
    ({"format_version": 99}, "format 99 is newer than this rig reads"),
    ({"expression_names": "jawOpen"}, "'expression_names' is not a list of names"),
    ({"preset_names": [1, 2]}, "'preset_names' is not a list of names"),
])
def test_a_malformed_dataset_json_is_an_input_error_naming_it(tmp_path, change, match):
    root, _, _ = _dataset(tmp_path)
    _set_info(root, **change)
    with pytest.raises(InputError, match="dataset.json: .*" + match):
        wd.WorldDataset(root)


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, "not a readable rig world dataset description"),  # RecursionError in json
    ('{"format": ' + "[" * 100 + "]" * 100 + "}", "nested deeper than 64 levels"),
    ('{"resolution": 1' + "0" * 5000 + "}", "not a readable"),  # Python's int digit limit: ValueError
    ('{"format": "rig.world_dataset"', "not a readable"),
    ("\xff\xfe{}", "not a readable"),
])
def test_unparsable_dataset_json_is_an_input_error(tmp_path, text, match):
    root, _, _ = _dataset(tmp_path)
    (root / wd.INFO_FILE).write_bytes(text.encode("latin1"))
    with pytest.raises(InputError, match="dataset.json: .*" + match):
        wd.WorldDataset(root)


def test_a_dataset_image_of_the_wrong_size_is_refused_before_decoding(tmp_path):
    root, _, _ = _dataset(tmp_path)
    Image.new("RGB", (4000, 3000)).save(wd.shard_path(root, 0) / wd.image_name(1))
    ds = wd.WorldDataset(root)
    with pytest.raises(InputError, match="00000001.png: image is 4000x3000, dataset resolution is 8"):
        ds.load_images(progress=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_a_damaged_dataset_image_is_an_input_error_naming_it(tmp_path, damage):
    root, _, _ = _dataset(tmp_path)
    path = wd.shard_path(root, 0) / wd.image_name(0)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:60])
    elif damage == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    else:
        path.unlink()
    with pytest.raises(InputError, match="00000000.png: unreadable dataset image"):
        wd.WorldDataset(root)[0]
