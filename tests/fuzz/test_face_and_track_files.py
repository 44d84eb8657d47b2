"""Regressions from fuzzing face files (``Face.save``) and ``track.npz`` (``save_track``), both read
with ``np.load`` until the fuzzer showed ``zipfile.BadZipFile`` (a broken zip, a bad CRC-32)
escaping from nearly every mutated file: they now read through ``rig.io.npy.read_npz`` and every
malformed form is an InputError naming the file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from rig.errors import InputError
from rig.face_model.params import RigParams


def _face_file(tmp_path):
    from rig.rignet.face import Face

    path = tmp_path / "face.npz"
    Face(torch.zeros(10, 128), "761e652c36b84604", {"seed": 1}, np.array([0.5]), ("jawOpen",)).save(path)
    return path


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_face_file_round_trips_through_rigs_reader(tmp_path):
    from rig.rignet.face import load_face

    face = load_face(_face_file(tmp_path), 10, 128)
    assert face.generator_identity == "761e652c36b84604" and face.provenance == {"seed": 1}
    assert face.control_names == ("jawOpen",) and face.controls.tolist() == [0.5]


@pytest.mark.parametrize("damage", ["truncate", "crc", "not_zip"])
def test_a_damaged_face_zip_is_an_input_error(tmp_path, damage):
    from rig.rignet.face import load_face

    path = _face_file(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "crc":  # a byte of the latent's data changed: zipfile's CRC-32 check raises BadZipFile
        raw[raw.index(b"\x93NUMPY") + 200] ^= 1
    else:
        raw[:4] = b"XXXX"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="face.npz"):
        load_face(path, 10, 128)


def test_face_strings_with_a_forged_code_point_or_deep_json_are_input_errors(tmp_path):
    from rig.rignet.face import FACE_FORMAT, load_face

    bad_char = np.frombuffer(np.array("ab").tobytes()[:4] + (0x110000).to_bytes(4, "little"), "<U2").reshape(())
    base = {"format.npy": _npy(FACE_FORMAT), "ws.npy": _npy(np.zeros((10, 128), np.float32))}
    path = _zip(tmp_path / "face.npz", dict(base, **{"generator_identity.npy": _npy(bad_char)}))
    with pytest.raises(InputError, match="U\\+10FFFF"):
        load_face(path, 10, 128)
    path = _zip(tmp_path / "face.npz", dict(base, **{"provenance.npy": _npy("[" * 100_000)}))
    with pytest.raises(InputError, match="provenance"):
        load_face(path, 10, 128)


def test_a_face_with_a_non_string_key_is_an_input_error(tmp_path):
    from rig.rignet.face import FACE_FORMAT, load_face

    path = _zip(tmp_path / "face.npz", {"format.npy": _npy(FACE_FORMAT), "ws.npy": _npy(np.zeros((10, 128))),
                                        "control_names.npy": _npy(np.arange(3))})
    with pytest.raises(InputError, match="control_names"):
        load_face(path, 10, 128)


class _Sizes:
    n_shape, n_expression = 100, 50


def test_a_damaged_track_npz_is_an_input_error(tmp_path):
    from rig.track.pipeline import load_track_params

    arrays = {k: v for k, v in RigParams.zeros(3, 100, 50, dtype=torch.float64).to_numpy().items()}
    good = tmp_path / "track.npz"
    np.savez_compressed(good, camera_model=np.array("weak_perspective"), **arrays)
    assert load_track_params(good, _Sizes()).batch_size == 3
    raw = bytearray(good.read_bytes())
    bad = tmp_path / "bad_track.npz"
    bad.write_bytes(bytes(raw[: len(raw) - 30]))  # the central directory cut off
    with pytest.raises(InputError, match="bad_track.npz: not a readable track .npz"):
        load_track_params(bad, _Sizes())
    raw[raw.index(b"global_pose") + 40] ^= 0xFF  # inside the deflated data
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="bad_track.npz"):
        load_track_params(bad, _Sizes())
