"""Safe reading of the real FLAME model files (``generic_model.pkl`` / ``FLAME_NEUTRAL.pkl``, 2020/2023).

FLAME ships as Python-2-era pickles that name ``chumpy.ch.Ch`` objects (chumpy is broken on
current numpy), scipy sparse matrices under module paths that have since moved
(``scipy.sparse.csc`` -> ``scipy.sparse._csc``), and numpy's array rebuilder. We unpickle them with
``rig.io.safe_pickle.load_restricted`` and an allow-list of rig's own stand-ins:

- ``chumpy.ch.Ch`` -> ``_ChumpyArray``: keeps only the pickled state; its value is the ``x`` array.
- ``scipy.sparse.{csc,csr,coo}[_matrix|_array]`` under old and new paths -> ``_SparseRecord``,
  densified here by our own code (no scipy call while loading).
- numpy's ``_reconstruct`` / ``ndarray`` / ``dtype`` / ``scalar`` -> ``rig.io.pickled_numpy``'s records: the
  array's state is never handed to numpy's C ``__setstate__``; rig checks dtype, shape and byte
  count and builds the array itself (object arrays only inside the dynamic-embedding ``.npy``).
- ``_codecs.encode`` (how Python 3 pickles bytes at protocol 2) -> latin-1 only; ``set``;
  ``copy_reg._reconstructor`` + ``object`` (protocol 0/1 object creation) for the stand-ins only.

Any other global raises ``UnsafeFileError`` before anything is called.

The landmark embeddings come beside the model: ``flame_static_embedding.pkl`` (51 points, iBUG
17..67) and ``flame_dynamic_embedding.npy`` (a 0-d object array holding a dict: 79 yaw bins x 17
contour points). The .npy is read without ``allow_pickle``: we parse the header ourselves and
hand the pickle payload to the restricted unpickler.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rig.errors import CheckpointError, UnsafeFileError
from rig.face_model.data import FaceModelData
from rig.io import pickled_numpy
from rig.io.guard import guarded
from rig.io.npy import read_npy
from rig.io.pickle_vm import StateRecord, short_repr
from rig.io.safe_pickle import load_restricted
from rig.io.tree_walk import convert_tree

N_IDENTITY_MAX = 300
FLAME_JOINT_COUNT = 5
MAX_DENSE_ELEMENTS = 1 << 25  # a densified sparse matrix: 256 MiB of float64 (FLAME's J_regressor is 5 x 5023)
MAX_ARRAY_BYTES = 1 << 30


class _ChumpyArray(StateRecord):
    """Stand-in for ``chumpy.ch.Ch``: records the pickled state dict; its value is the ``x`` array."""

    def __init__(self, *args: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


class _SparseRecord(StateRecord):
    """Stand-in for a pickled scipy sparse matrix: holds its ``__dict__`` (``_shape``, ``data``, ...)."""

    format = "?"

    def __init__(self, *args: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


def _sparse_class(fmt: str) -> type:
    return type(f"_Sparse_{fmt}", (_SparseRecord,), {"format": fmt})


_SPARSE_CLASSES = {fmt: _sparse_class(fmt) for fmt in ("csc", "csr", "coo")}


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise UnsafeFileError(f"_codecs.encode called with encoding {short_repr(encoding)}; only latin1 byte strings are allowed")
    return text.encode("latin1")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # Protocol 0/1 pickles build objects through copy_reg._reconstructor; only our stand-ins.
    if not (isinstance(cls, type) and issubclass(cls, (_ChumpyArray, _SparseRecord)) and base is object):
        raise UnsafeFileError(f"copy_reg._reconstructor asked to build {short_repr(cls)}")
    return cls()


def _allow_list() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("chumpy.ch", "Ch"): _ChumpyArray,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "set"): set,
        ("builtins", "set"): set,
        ("__builtin__", "object"): object,
        ("builtins", "object"): object,
        ("copy_reg", "_reconstructor"): _copyreg_reconstructor,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    }
    allowed.update(pickled_numpy.allow_list())
    for fmt, cls in _SPARSE_CLASSES.items():
        for mod in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}", "scipy.sparse"):
            allowed[(mod, f"{fmt}_matrix")] = cls
            allowed[(mod, f"{fmt}_array")] = cls
    return allowed


# ----------------------------------------------------------------------------- converting stand-ins


def _dense_shape(value: Any, source: str, fmt: str) -> tuple[int, int]:
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s for s in value)):
        raise CheckpointError(f"{source}: {fmt} sparse matrix with malformed _shape {short_repr(value)}")
    rows, cols = int(value[0]), int(value[1])
    if rows * cols > MAX_DENSE_ELEMENTS:
        raise CheckpointError(f"{source}: {fmt} sparse matrix of shape ({rows}, {cols}) is too large to densify "
                              f"(limit {MAX_DENSE_ELEMENTS} elements)")
    return rows, cols


def sparse_to_dense(record: _SparseRecord, source: str = "pickle") -> np.ndarray:
    """Densify a pickled csc / csr / coo matrix's state (``_shape``, ``data``, index arrays).

    The state's arrays must already be plain numpy arrays (``to_plain`` converts them first).
    Duplicate entries are summed, as scipy does. The dense size and the index arrays are checked
    before anything is allocated.
    """
    st = record.state
    try:
        shape = _dense_shape(st.get("_shape"), source, record.format)
        data = np.asarray(st["data"], dtype=np.float64).reshape(-1)
        if record.format in ("csc", "csr"):
            indices = np.asarray(st["indices"], dtype=np.int64).reshape(-1)
            indptr = np.asarray(st["indptr"], dtype=np.int64).reshape(-1)
            n_major = shape[1] if record.format == "csc" else shape[0]
            n_minor = shape[0] if record.format == "csc" else shape[1]
            ok = (indptr.shape == (n_major + 1,) and indptr[0] == 0 and np.all(np.diff(indptr) >= 0)
                  and indptr[-1] == len(indices) == len(data) and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_minor)))
            if not ok:
                raise ValueError("inconsistent index arrays")
            major = np.repeat(np.arange(n_major), np.diff(indptr))
            rows, cols = (indices, major) if record.format == "csc" else (major, indices)
        else:  # coo: scipy >= 1.13 stores 'coords', older 'row'/'col'
            rows, cols = (st["coords"] if "coords" in st else (st["row"], st["col"]))
            rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            cols = np.asarray(cols, dtype=np.int64).reshape(-1)
            if not (len(rows) == len(cols) == len(data)) or (len(rows) and (rows.min() < 0 or rows.max() >= shape[0]
                                                                             or cols.min() < 0 or cols.max() >= shape[1])):
                raise ValueError("inconsistent index arrays")
        out = np.zeros(shape, dtype=np.float64)
        np.add.at(out, (rows, cols), data)
        return out
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(f"{source}: malformed {record.format} sparse matrix ({short_repr(str(e))})") from None


def to_plain(obj: Any, source: str = "pickle", allow_object: bool = False, budget_bytes: int | None = None) -> Any:
    """Replace stand-ins in a loaded structure by plain numpy arrays (through dicts / lists / tuples).

    Shared sub-structures are converted once, cycles and deep nesting are refused (see
    ``rig.io.tree_walk``), and the arrays built add up to at most ``budget_bytes`` (default 1 GiB).
    """
    budget = pickled_numpy.ByteBudget(budget_bytes or MAX_ARRAY_BYTES, source)

    def leaf(x: Any, recurse) -> Any:
        if isinstance(x, pickled_numpy.ArrayRecord):
            return pickled_numpy.build_array(x, recurse, source, budget, allow_object=allow_object)
        if isinstance(x, _ChumpyArray):
            value = recurse(x.state.get("x"))
            if not isinstance(value, np.ndarray):
                raise CheckpointError(f"{source}: chumpy object without an 'x' array")
            return value
        if isinstance(x, _SparseRecord):
            plain = type(x)()
            plain.state = {k: recurse(v) for k, v in x.state.items()}
            dense = sparse_to_dense(plain, source)
            budget.take(dense.nbytes)
            return dense
        return x

    return convert_tree(obj, leaf, source)


def _restricted(source: str | os.PathLike | bytes, label: str) -> Any:
    try:
        return load_restricted(source, _allow_list(), name=label)
    except UnsafeFileError as e:
        # The stand-ins' own refusals do not know the file; name it.
        if label in str(e):
            raise
        raise UnsafeFileError(f"{label}: refused to load: {e} (nothing was executed)") from None


@guarded
def load_flame_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Unpickle a FLAME-format file safely and return a dict of plain numpy arrays / strings."""
    loaded = _restricted(path, str(path))
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: expected a pickled dict, got {type(loaded).__name__}")
    return to_plain(loaded, str(path))


def _load_npy_object(path: Path) -> Any:
    """Read a .npy holding a pickled object array without ``allow_pickle``: header parse + restricted unpickle."""
    parsed = read_npy(path, allow_object=True)
    if not isinstance(parsed, tuple):
        return parsed  # a plain numeric array
    _, shape, payload = parsed
    obj = to_plain(_restricted(payload, str(path)), str(path), allow_object=True)
    # np.save pickles the whole object array; a 0-d object array holds the dict.
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    return obj


def _uint_to_int64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(np.int64)


@guarded
def load_static_embedding(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """FLAME's ``flame_static_embedding.pkl`` -> (faces_idx (51,) int64, bary (51, 3) float64)."""
    d = load_flame_pickle(path)
    try:
        faces = _uint_to_int64(d["lmk_face_idx"]).reshape(-1)
        bary = np.asarray(d["lmk_b_coords"], dtype=np.float64).reshape(-1, 3)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a FLAME landmark embedding ({e})") from None
    if faces.shape[0] != bary.shape[0]:
        raise CheckpointError(f"{path}: {faces.shape[0]} faces but {bary.shape[0]} barycentric triples")
    return faces, bary


@guarded
def load_dynamic_embedding(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """FLAME's ``flame_dynamic_embedding.npy`` -> (faces_idx (79, 17) int64, bary (79, 17, 3) float64)."""
    path = Path(path)
    d = _load_npy_object(path)
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: expected a dict inside the .npy, got {type(d).__name__}")
    try:
        faces = _uint_to_int64(d["lmk_face_idx"])
        bary = np.asarray(d["lmk_b_coords"], dtype=np.float64)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a FLAME dynamic embedding ({e})") from None
    if faces.ndim != 2 or faces.shape[1] != 17 or bary.shape != faces.shape + (3,):
        raise CheckpointError(f"{path}: dynamic embedding has shapes {faces.shape}, {bary.shape}; expected (N, 17), (N, 17, 3)")
    return faces, bary


@guarded
def load_combined_embedding(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DECA's ``landmark_embedding.npy`` (one dict with ``static_lmk_faces_idx`` (51,),
    ``static_lmk_bary_coords`` (51, 3), ``dynamic_lmk_faces_idx`` (79, 17),
    ``dynamic_lmk_bary_coords`` (79, 17, 3)) -> those four arrays (int64 / float64)."""
    path = Path(path)
    d = _load_npy_object(path)
    keys = ("static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")
    if not isinstance(d, dict) or any(k not in d for k in keys):
        raise CheckpointError(f"{path}: not a DECA landmark embedding (expected a dict with {', '.join(keys)})")
    sf, sb = _uint_to_int64(d[keys[0]]).reshape(-1), np.asarray(d[keys[1]], dtype=np.float64).reshape(-1, 3)
    df, db = _uint_to_int64(d[keys[2]]), np.asarray(d[keys[3]], dtype=np.float64)
    if sf.shape[0] != sb.shape[0] or df.ndim != 2 or df.shape[1] != 17 or db.shape != df.shape + (3,):
        raise CheckpointError(f"{path}: landmark embedding shapes {sf.shape}, {sb.shape}, {df.shape}, {db.shape} are inconsistent")
    return sf, sb, df, db


def _array(d: dict, key: str, source: str, ndim: int) -> np.ndarray:
    if key not in d:
        raise CheckpointError(f"{source}: missing '{key}' (not a FLAME model file?)")
    try:
        a = np.asarray(d[key])
    except Exception as e:  # noqa: BLE001 - anything odd in an untrusted file
        raise CheckpointError(f"{source}: '{key}' is not an array ({e})") from None
    if a.ndim != ndim or a.dtype.kind not in "fiu":
        raise CheckpointError(f"{source}: '{key}' has shape {a.shape} / dtype {a.dtype}, expected a {ndim}-D numeric array")
    return a


@guarded
def flame_data_from_pickle(
    model_path: str | os.PathLike,
    static_embedding: str | os.PathLike | None = None,
    dynamic_embedding: str | os.PathLike | None = None,
    combined_embedding: str | os.PathLike | None = None,
) -> FaceModelData:
    """Build ``FaceModelData`` from a FLAME model pickle and its landmark embeddings.

    Args:
        model_path: ``generic_model.pkl`` / ``FLAME_NEUTRAL.pkl`` (any FLAME-layout pickle).
        static_embedding: ``flame_static_embedding.pkl`` (51 points), or None.
        dynamic_embedding: ``flame_dynamic_embedding.npy`` (79 x 17 contour), or None.
        combined_embedding: DECA's ``landmark_embedding.npy`` holding both (used when the two
            above are None).
    The blendshapes split as FLAME does: the first min(300, n) are identity, the rest expression.
    Without both embeddings the model has no landmarks (``lmk_faces_idx`` is empty) and
    ``FaceModelData.validate`` is skipped for them; ``FaceModel`` then returns empty landmarks.
    """
    src = str(model_path)
    d = load_flame_pickle(model_path)
    v_template = _array(d, "v_template", src, 2).astype(np.float64)
    faces = _array(d, "f", src, 2).astype(np.int64)
    blend = _array(d, "shapedirs", src, 3).astype(np.float64)
    posedirs = _array(d, "posedirs", src, 3).astype(np.float64)
    J_regressor = _array(d, "J_regressor", src, 2).astype(np.float64)
    weights = _array(d, "weights", src, 2).astype(np.float64)
    kintree = _array(d, "kintree_table", src, 2)
    if kintree.shape[0] != 2 or not 1 <= kintree.shape[1] <= 64:
        raise CheckpointError(f"{src}: kintree_table has shape {kintree.shape}, expected (2, J) with 1 <= J <= 64")
    parents = kintree[0].astype(np.int64)
    # FLAME stores the root's parent as uint32 max (4294967295).
    parents[parents >= kintree.shape[1]] = -1
    if not (parents.shape[0] >= 1 and parents[0] == -1):
        raise CheckpointError(f"{src}: kintree_table does not start with the root joint")
    if blend.shape[:2] != v_template.shape:
        raise CheckpointError(f"{src}: shapedirs has shape {blend.shape}, expected ({v_template.shape[0]}, 3, N)")
    n_id = min(N_IDENTITY_MAX, blend.shape[2])
    lmk_faces = np.zeros((0,), np.int64)
    lmk_bary = np.zeros((0, 3), np.float64)
    dyn_faces = dyn_bary = None
    if static_embedding is not None:
        lmk_faces, lmk_bary = load_static_embedding(static_embedding)
    if dynamic_embedding is not None:
        dyn_faces, dyn_bary = load_dynamic_embedding(dynamic_embedding)
    if static_embedding is None and dynamic_embedding is None and combined_embedding is not None:
        lmk_faces, lmk_bary, dyn_faces, dyn_bary = load_combined_embedding(combined_embedding)
    data = FaceModelData(
        v_template=v_template,
        faces=faces,
        shapedirs=np.ascontiguousarray(blend[:, :, :n_id]),
        exprdirs=np.ascontiguousarray(blend[:, :, n_id:]),
        posedirs=posedirs,
        J_regressor=J_regressor,
        parents=parents,
        lbs_weights=weights,
        lmk_faces_idx=lmk_faces,
        lmk_bary_coords=lmk_bary,
        dynamic_lmk_faces_idx=dyn_faces,
        dynamic_lmk_bary_coords=dyn_bary,
        name=Path(src).stem,
        metadata={"source": "FLAME pickle", "path": str(Path(src).resolve()), "bs_style": str(d.get("bs_style", "")),
                  "bs_type": str(d.get("bs_type", ""))},
    )
    if lmk_faces.shape[0] == 0:
        _validate_without_landmarks(data, src)
    else:
        data.validate(src)
        if lmk_faces.max() >= faces.shape[0] or (dyn_faces is not None and dyn_faces.max() >= faces.shape[0]):
            raise CheckpointError(f"{src}: landmark embedding refers to triangles beyond the model's {faces.shape[0]}")
    return data


def _validate_without_landmarks(data: FaceModelData, src: str) -> None:
    # FaceModelData.validate insists on 51/68 landmarks; check everything else with a dummy set.
    probe = FaceModelData(**{**data.__dict__, "lmk_faces_idx": np.zeros(68, np.int64), "lmk_bary_coords": np.zeros((68, 3))})
    probe.validate(src)
