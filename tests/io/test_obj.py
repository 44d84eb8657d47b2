"""OBJ writer / reader: exact round trip of float32 values, 1-based faces, UV corners, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import InputError, ShapeError
from rig.io.obj import read_obj, write_obj


def test_round_trip_keeps_float32_exactly_and_faces_one_based(tmp_path):
    rng = np.random.default_rng(0)
    v = (rng.normal(size=(10, 3)) * 0.1).astype(np.float32).astype(np.float64)
    f = rng.integers(0, 10, size=(7, 3))
    path = tmp_path / "m.obj"
    write_obj(path, v, f)
    mesh = read_obj(path)
    assert np.array_equal(mesh.vertices.astype(np.float32), v.astype(np.float32))  # %.9g identifies every float32
    assert np.array_equal(mesh.faces, f) and mesh.uv_coords is None
    face_lines = [line.split()[1:] for line in path.read_text().splitlines() if line.startswith("f ")]
    assert [int(x) for x in face_lines[0]] == (f[0] + 1).tolist()


def test_float64_values_keep_nine_significant_digits(tmp_path):
    v = np.array([[0.123456789123, -1.5e-5, 2.0 / 3.0]])
    write_obj(tmp_path / "m.obj", v, np.zeros((0, 3), np.int64))
    got = read_obj(tmp_path / "m.obj").vertices
    assert np.all(np.abs(got - v) <= 5e-9 * np.abs(v))


def test_uvs_are_written_as_v_vt_corners(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    f = np.array([[0, 1, 2], [1, 3, 2]])
    uv = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]], float)
    uvf = np.array([[0, 1, 4], [1, 3, 2]])
    write_obj(tmp_path / "m.obj", v, f, uv, uvf)
    text = (tmp_path / "m.obj").read_text()
    assert "f 1/1 2/2 3/5" in text
    mesh = read_obj(tmp_path / "m.obj")
    assert np.array_equal(mesh.uv_faces, uvf) and np.array_equal(mesh.uv_coords, uv)


def test_reader_triangulates_quads_and_handles_negative_indices(tmp_path):
    (tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf -4 -3 -2 -1\n")
    assert read_obj(tmp_path / "q.obj").faces.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_bad_inputs(tmp_path):
    with pytest.raises(ShapeError):
        write_obj(tmp_path / "m.obj", np.zeros((3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(InputError, match="not found"):
        read_obj(tmp_path / "missing.obj")
    assert not (tmp_path / "m.obj").exists()
