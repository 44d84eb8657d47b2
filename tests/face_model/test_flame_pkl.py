"""Safe loading of FLAME-format files: the genuine-format fixture, sparse matrices under old and
new scipy module paths, the .npy embedding without allow_pickle, and hostile files refused with no
side effect."""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import subprocess

import numpy as np
import pytest
import scipy.sparse
import torch

from rig.errors import CheckpointError, UnsafeFileError
from rig.face_model import load_face_model
from rig.face_model.flame_pkl import (load_dynamic_embedding, load_flame_pickle, load_static_embedding,
                                      flame_data_from_pickle)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_fixture_arrays_come_back_with_flame_layout(flame_pkl):
    d = load_flame_pickle(flame_pkl)
    assert d["v_template"].shape == (162, 3) and d["f"].shape == (320, 3)
    assert d["shapedirs"].shape == (162, 3, 400) and d["posedirs"].shape == (162, 3, 36)
    assert isinstance(d["J_regressor"], np.ndarray) and d["J_regressor"].shape == (5, 162)
    assert d["bs_style"] == "lbs" and d["bs_type"] == "lrotmin"
    # The regressor's rows are convex combinations and the rest-pose joints the fixture stores
    # were regressed from the template.
    assert np.allclose(d["J_regressor"].sum(1), 1.0)
    assert np.allclose(d["J_regressor"] @ d["v_template"], d["J"], atol=1e-12)


def test_fixture_splits_300_identity_100_expression_and_fixes_root(flame_pkl):
    data = flame_data_from_pickle(flame_pkl)
    raw = load_flame_pickle(flame_pkl)
    assert data.n_shape == 300 and data.n_expression == 100
    assert np.array_equal(data.exprdirs, raw["shapedirs"][:, :, 300:])
    assert data.parents.tolist() == [-1, 0, 1, 1, 1]
    assert data.lmk_faces_idx.shape == (0,)  # no embedding given explicitly here


@pytest.mark.parametrize("n_total, n_id", [(400, 300), (150, 150), (320, 300)])
def test_shapedirs_split_general_rule(tmp_path, flame_pkl, n_total, n_id):
    raw = load_flame_pickle(flame_pkl)
    raw["shapedirs"] = np.random.default_rng(0).normal(size=(162, 3, n_total))
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(raw, protocol=2))
    data = flame_data_from_pickle(path)
    assert (data.n_shape, data.n_expression) == (n_id, n_total - n_id)


def test_embeddings_load_without_allow_pickle(flame_fixture_dir):
    faces, bary = load_static_embedding(flame_fixture_dir / "flame_static_embedding.pkl")
    assert faces.shape == (51,) and faces.dtype == np.int64 and bary.shape == (51, 3)
    assert np.allclose(bary.sum(1), 1.0)
    dyn_faces, dyn_bary = load_dynamic_embedding(flame_fixture_dir / "flame_dynamic_embedding.npy")
    assert dyn_faces.shape == (79, 17) and dyn_bary.shape == (79, 17, 3)
    # Independent reference: numpy's own pickle path on this trusted fixture.
    ref = np.load(flame_fixture_dir / "flame_dynamic_embedding.npy", allow_pickle=True).item()
    assert np.array_equal(dyn_faces, ref["lmk_face_idx"]) and np.array_equal(dyn_bary, ref["lmk_b_coords"])


@pytest.mark.parametrize("fmt", ["csc", "csr", "coo"])
@pytest.mark.parametrize("module_style", ["new", "old"])
def test_sparse_matrices_densify_under_old_and_new_module_paths(tmp_path, flame_pkl, fmt, module_style):
    rng = np.random.default_rng(4)
    dense = rng.random((5, 162)) * (rng.random((5, 162)) < 0.1)
    mat = scipy.sparse.coo_matrix(dense).asformat(fmt)
    blob = pickle.dumps({"J_regressor": mat}, protocol=2)
    if module_style == "old":  # what a pickle from scipy < 1.8 says
        blob = blob.replace(f"scipy.sparse._{fmt}".encode(), f"scipy.sparse.{fmt}".encode())
        assert f"scipy.sparse.{fmt}\n".encode() in blob
    got = load_flame_pickle(_write(tmp_path / "s.pkl", blob))["J_regressor"]
    assert isinstance(got, np.ndarray) and np.array_equal(got, dense)


def _write(path, blob: bytes):
    path.write_bytes(blob)
    return path


# ------------------------------------------------------------------------------------ hostile files


class _OsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


def _global_call(module: str, name: str, arg: str) -> bytes:
    """Protocol-2 pickle of ``{'v_template': module.name(arg)}`` built opcode by opcode."""
    a = arg.encode()
    return (b"\x80\x02}X\n\x00\x00\x00v_template" + f"c{module}\n{name}\n".encode()
            + b"X" + struct.pack("<I", len(a)) + a + b"\x85R" + b"s.")


def _hostile_blobs(marker) -> dict[str, bytes]:
    cmd = f"__import__('os').system('touch {marker}')"
    return {
        "os.system in __reduce__": pickle.dumps({"v_template": _OsSystem(marker)}, protocol=2),
        "subprocess.Popen": pickle.dumps({"v_template": _Popen(marker)}, protocol=2),
        "builtins.eval": _global_call("builtins", "eval", cmd),
        "__builtin__.eval (py2 name)": _global_call("__builtin__", "eval", cmd),
        "chumpy-looking module": _global_call("chumpy.ch_ops", "system", f"touch {marker}"),
        "chumpy.ch with a non-Ch name": _global_call("chumpy.ch", "os", f"touch {marker}"),
        "numpy.testing helper": _global_call("numpy.testing._private.utils", "runstring", cmd),
        "codecs with a non-latin1 codec": _global_call("_codecs", "encode", "eval"),
    }


@pytest.mark.parametrize("case", list(_hostile_blobs("m").keys()))
def test_hostile_pickles_are_refused_without_side_effect(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "generic_model.pkl", _hostile_blobs(marker)[case])
    with pytest.raises(UnsafeFileError) as info:
        load_face_model(path)
    assert "generic_model.pkl" in str(info.value)
    assert not marker.exists()


def test_hostile_dynamic_embedding_npy_is_refused(tmp_path, flame_fixture_dir):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(np.array({"lmk_face_idx": _OsSystem(marker)}, dtype=object), protocol=3)
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += b" " * (63 - len(header)) + b"\n"
    folder = tmp_path / "flame"
    folder.mkdir()
    for name in ("generic_model.pkl", "flame_static_embedding.pkl"):
        shutil.copy(flame_fixture_dir / name, folder / name)
    _write(folder / "flame_dynamic_embedding.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload)
    with pytest.raises(UnsafeFileError, match="flame_dynamic_embedding.npy"):
        load_face_model(folder / "generic_model.pkl")
    assert not marker.exists()


def test_array_rebuild_of_another_class_is_refused(tmp_path):
    # A pickle may name numpy's rebuilder but must not choose the class it builds.
    blob = pickle.dumps({"v_template": np.ma.masked_array([1.0, 2.0])}, protocol=2)
    with pytest.raises(UnsafeFileError):
        load_flame_pickle(_write(tmp_path / "m.pkl", blob))


def test_corrupt_and_wrong_files_give_checkpoint_errors(tmp_path, flame_pkl):
    truncated = _write(tmp_path / "t.pkl", flame_pkl.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="t.pkl"):
        load_face_model(truncated)
    not_a_dict = _write(tmp_path / "l.pkl", pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(CheckpointError, match="expected a pickled dict"):
        load_face_model(not_a_dict)
    raw = load_flame_pickle(flame_pkl)
    del raw["posedirs"]
    missing = _write(tmp_path / "p.pkl", pickle.dumps(raw, protocol=2))
    with pytest.raises(CheckpointError, match="posedirs"):
        load_face_model(missing)
    with pytest.raises(CheckpointError, match="not found"):
        load_face_model(tmp_path / "absent.pkl")
    with pytest.raises(CheckpointError, match="unknown face-model format"):
        load_face_model(_write(tmp_path / "x.obj", b"v 0 0 0\n"))


def test_embeddings_are_found_beside_the_model(flame_pkl):
    model = load_face_model(flame_pkl, dtype=torch.float64)
    assert model.has_landmarks and model.lmk_faces_idx.shape == (51,)
    assert model.dynamic_lmk_faces_idx.shape == (79, 17)


def test_one_embedding_without_the_other_is_an_error(tmp_path, flame_fixture_dir):
    shutil.copy(flame_fixture_dir / "generic_model.pkl", tmp_path / "generic_model.pkl")
    shutil.copy(flame_fixture_dir / "flame_static_embedding.pkl", tmp_path / "flame_static_embedding.pkl")
    with pytest.raises(CheckpointError, match="flame_dynamic_embedding.npy"):
        load_face_model(tmp_path / "generic_model.pkl")
    # Without any embedding the model loads and has no landmarks.
    (tmp_path / "flame_static_embedding.pkl").unlink()
    model = load_face_model(tmp_path / "generic_model.pkl")
    assert model(model.zero_params()).landmarks.shape == (1, 0, 3)


class _Py2StylePickler(pickle._Pickler):
    """Writes bytes as BINSTRING, as Python 2 did for the raw data of FLAME's arrays."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def test_python2_era_pickle_loads(tmp_path, flame_pkl, reference_params, reference_forward):
    import io

    raw = load_flame_pickle(flame_pkl)
    buf = io.BytesIO()
    _Py2StylePickler(buf, protocol=2).dump(raw)
    blob = buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"_codecs" not in blob and pickle.BINSTRING in blob
    path = _write(tmp_path / "generic_model.pkl", blob)
    for name in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy"):
        shutil.copy(flame_pkl.parent / name, tmp_path / name)
    model = load_face_model(path, dtype=torch.float64)
    out = model(reference_params(0, model))
    assert np.abs(out.vertices[0].numpy() - reference_forward["verts_0"]).max() <= 1e-8


def test_protocol0_chumpy_object_loads_via_copyreg(tmp_path, monkeypatch):
    # Build a genuine protocol-0 pickle of a class named chumpy.ch.Ch (a throwaway fake module).
    import sys
    import types

    fake = types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake)
    obj = Ch()
    obj.__dict__.update({"x": np.arange(6.0).reshape(2, 3), "_itr": None})
    blob = pickle.dumps({"weights": obj}, protocol=0)
    assert b"_reconstructor" in blob
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    got = load_flame_pickle(_write(tmp_path / "p0.pkl", blob))
    assert np.array_equal(got["weights"], np.arange(6.0).reshape(2, 3))


def test_numpy_scalars_and_strings_in_the_dict_load(tmp_path):
    blob = pickle.dumps({"scale": np.float64(2.5), "count": np.int32(7), "bs_style": "lbs"}, protocol=2)
    got = load_flame_pickle(_write(tmp_path / "s.pkl", blob))
    assert got["scale"] == 2.5 and got["count"] == 7 and got["scale"].dtype == np.float64
    from numpy._core.multiarray import scalar

    class ShortScalar:
        def __reduce__(self):
            return (scalar, (np.dtype("f8"), b"abc"))  # 3 bytes for an 8-byte float

    with pytest.raises(UnsafeFileError, match="malformed"):
        load_flame_pickle(_write(tmp_path / "b.pkl", pickle.dumps({"s": ShortScalar()}, protocol=2)))


def test_deca_combined_embedding_is_used_when_the_flame_ones_are_absent(tmp_path, flame_fixture_dir, reference_params):
    static_faces, static_bary = load_static_embedding(flame_fixture_dir / "flame_static_embedding.pkl")
    dyn_faces, dyn_bary = load_dynamic_embedding(flame_fixture_dir / "flame_dynamic_embedding.npy")
    combined = {"static_lmk_faces_idx": static_faces, "static_lmk_bary_coords": static_bary,
                "dynamic_lmk_faces_idx": dyn_faces, "dynamic_lmk_bary_coords": dyn_bary,
                "full_lmk_faces_idx": np.zeros((1, 68), np.int64)}  # DECA also stores this; unused
    np.save(tmp_path / "landmark_embedding.npy", np.array(combined, dtype=object), allow_pickle=True)
    shutil.copy(flame_fixture_dir / "generic_model.pkl", tmp_path / "generic_model.pkl")
    deca = load_face_model(tmp_path / "generic_model.pkl", dtype=torch.float64)
    flame = load_face_model(flame_fixture_dir / "generic_model.pkl", dtype=torch.float64)
    p = reference_params(1, flame)
    p.global_pose[0, 1] = 0.4  # a yaw that selects a non-frontal contour bin
    assert torch.equal(deca(p).landmarks, flame(p).landmarks)


def test_ndarray_cannot_be_called_directly(tmp_path):
    class Huge:
        def __reduce__(self):
            return (np.ndarray, ((10**12,), "f8"))  # would try to allocate 8 TB

    with pytest.raises(CheckpointError):
        load_flame_pickle(_write(tmp_path / "h.pkl", pickle.dumps({"v_template": Huge()}, protocol=2)))
