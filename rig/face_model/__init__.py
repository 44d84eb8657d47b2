"""The FLAME-layout parametric face model: data, loaders, forward pass, presets, the default head.

Public API::

    from rig.face_model import load_face_model, RigParams
    model = load_face_model("default")            # or a FLAME generic_model.pkl, or a rig .npz
    params = RigParams.for_model(model, batch=1)  # zeros; edit fields (radians, metres)
    out = model(params)                           # FaceModelOutput(vertices, joints, landmarks)
"""

from rig.face_model.data import JOINT_NAMES, REGION_NAMES, FaceModelData
from rig.face_model.loading import load_face_model
from rig.face_model.model import FaceModel, FaceModelOutput
from rig.face_model.params import RigParams, params_from_flags
from rig.face_model.presets import expression_preset, preset_names


__all__ = [
    "FaceModel",
    "FaceModelData",
    "FaceModelOutput",
    "JOINT_NAMES",
    "REGION_NAMES",
    "RigParams",
    "expression_preset",
    "load_face_model",
    "params_from_flags",
    "preset_names",
]
