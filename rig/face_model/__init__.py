"""The FLAME-layout parametric face model: data, loaders, forward pass, presets, the default head."""

from rig.face_model.data import JOINT_NAMES, REGION_NAMES, FaceModelData

__all__ = ["FaceModelData", "JOINT_NAMES", "REGION_NAMES"]
