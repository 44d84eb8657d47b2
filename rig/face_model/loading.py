"""``load_face_model``: turn what a user names (``default``, a FLAME pickle, a rig .npz) into a ``FaceModel``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rig.errors import CheckpointError
from rig.face_model.data import FaceModelData
from rig.face_model.model import FaceModel
from rig.paths import default_head_path, require_shipped

# The names FLAME's landmark embeddings go by in the FLAME_PyTorch / TF_FLAME / DECA downloads.
STATIC_EMBEDDING_NAME = "flame_static_embedding.pkl"
DYNAMIC_EMBEDDING_NAME = "flame_dynamic_embedding.npy"
COMBINED_EMBEDDING_NAME = "landmark_embedding.npy"  # DECA's single-file version of the two


def resolve_face_model_path(spec: str | os.PathLike) -> Path:
    """``"default"`` -> the embedded head's path; anything else is taken as a path."""
    if str(spec) == "default":
        return require_shipped(default_head_path(), "the embedded default head",
                               "pass --face-model PATH to a FLAME generic_model.pkl or a rig face-model .npz")
    return Path(spec)


def load_face_model_data(
    spec: str | os.PathLike,
    static_embedding: str | os.PathLike | None = None,
    dynamic_embedding: str | os.PathLike | None = None,
) -> FaceModelData:
    """The ``FaceModelData`` (float64 numpy) behind ``spec``; see ``load_face_model``."""
    path = resolve_face_model_path(spec)
    if not path.exists():
        raise CheckpointError(f"{path}: face model file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; name the model file (generic_model.pkl or a .npz)")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return FaceModelData.load(path)
    if suffix == ".pkl":
        from rig.face_model.flame_pkl import flame_data_from_pickle

        if static_embedding is None and (path.parent / STATIC_EMBEDDING_NAME).is_file():
            static_embedding = path.parent / STATIC_EMBEDDING_NAME
        if dynamic_embedding is None and (path.parent / DYNAMIC_EMBEDDING_NAME).is_file():
            dynamic_embedding = path.parent / DYNAMIC_EMBEDDING_NAME
        if (static_embedding is None) != (dynamic_embedding is None):
            missing = STATIC_EMBEDDING_NAME if static_embedding is None else DYNAMIC_EMBEDDING_NAME
            raise CheckpointError(f"{path}: found one FLAME landmark embedding but not {missing} beside it")
        combined = path.parent / COMBINED_EMBEDDING_NAME
        return flame_data_from_pickle(path, static_embedding, dynamic_embedding,
                                      combined if static_embedding is None and combined.is_file() else None)
    raise CheckpointError(f"{path}: unknown face-model format '{suffix}' (expected 'default', a FLAME .pkl or a rig .npz)")


def load_face_model(
    spec: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    static_embedding: str | os.PathLike | None = None,
    dynamic_embedding: str | os.PathLike | None = None,
) -> FaceModel:
    """Load a FLAME-layout face model.

    Args:
        spec: ``"default"`` (``rig/checkpoints/default_head/default_head.npz``), a FLAME
            ``generic_model.pkl`` / ``FLAME_NEUTRAL.pkl`` (its landmark embeddings
            ``flame_static_embedding.pkl`` + ``flame_dynamic_embedding.npy``, or else DECA's
            ``landmark_embedding.npy``, are picked up from the same folder unless given), or a
            rig face-model ``.npz``.
        dtype: float dtype of the module's buffers (float32 or float64).
        static_embedding, dynamic_embedding: explicit FLAME landmark embedding files.
    Raises:
        CheckpointError: missing / unreadable / inconsistent files; ``UnsafeFileError`` (a
        subclass) when a pickle asks for anything outside the FLAME allow-list.
    """
    if dtype not in (torch.float32, torch.float64):
        raise CheckpointError(f"face models are float32 or float64, not {dtype}")
    return FaceModel.from_data(load_face_model_data(spec, static_embedding, dynamic_embedding), dtype)
