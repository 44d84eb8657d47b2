"""Regressions from fuzzing the small array files a user hands to commands (rig parameters, W+
latents, SH lighting): each malformed form the fuzzer found escaping as a foreign exception
(``BadZipFile``, tokenize's ``TokenError``, ``EOFError``, ``RecursionError``) is an InputError
naming the file."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from rig.errors import InputError


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _cut_header(a: np.ndarray) -> bytes:
    """A .npy whose header dict stops inside the shape tuple, its length field consistent (numpy's
    header parser raises tokenize's TokenError)."""
    descr = np.lib.format.dtype_to_descr(a.dtype)
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({a.shape[0]}, ".encode() + b" " * 10 + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + a.tobytes()


def test_params_npz_that_is_no_zip_is_an_input_error(tmp_path):
    from rig.face_model.params import RigParams

    bad = tmp_path / "p.npz"
    bad.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(InputError, match="p.npz"):
        RigParams.load(bad, 10, 10)


def test_params_json_nested_too_deep_is_an_input_error(tmp_path):
    from rig.face_model.params import RigParams

    bad = tmp_path / "p.json"
    bad.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError, match="p.json"):
        RigParams.load(bad, 10, 10)


def test_latents_npy_with_a_cut_header_is_an_input_error(tmp_path):
    from rig.stylegan2.generate import load_ws_file

    bad = tmp_path / "ws.npy"
    bad.write_bytes(_cut_header(np.zeros((2, 6, 16), np.float32)))
    with pytest.raises(InputError, match="ws.npy"):
        load_ws_file(bad, 6, 16)
    good = tmp_path / "good.npy"
    good.write_bytes(_npy_bytes(np.full((6, 16), 0.5, np.float32)))
    ws = load_ws_file(good, 6, 16)
    assert ws.shape == (1, 6, 16) and ws.dtype == np.float32 and float(ws[0, 3, 7]) == 0.5


@pytest.mark.parametrize("content, match", [
    (lambda: _cut_header(np.zeros((9, 3))), "sh.npy"),
    (lambda: _npy_bytes(np.zeros((9, 3)))[:-5], "sh.npy: .*data bytes"),  # numpy: EOFError / ValueError
    (lambda: _npy_bytes(np.full((9, 3), np.nan)), r"sh.npy: SH coefficient\[0, 0\] = nan: NaN or infinite"),
])
def test_sh_npy_malformed_or_non_finite_is_an_input_error(tmp_path, content, match):
    from rig.render.shading import load_sh

    bad = tmp_path / "sh.npy"
    bad.write_bytes(content())
    with pytest.raises(InputError, match=match):
        load_sh(bad)
