"""Python side of the fused C++ visibility pass (``csrc/rasterize.cpp``), built on first use."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch

from rig._ext import load_cpp_extension

KERNEL_SOURCE = Path(__file__).resolve().parent / "csrc" / "rasterize.cpp"
KERNEL_NAME = "rig_rasterize_cpp"
KERNEL_TITLE = "C++ rasterizer"


def load_kernel(required: bool = False) -> ModuleType | None:
    """The compiled kernel module, or ``None`` (after one warning) if it cannot be built."""
    return load_cpp_extension(KERNEL_NAME, [KERNEL_SOURCE], required=required, title=KERNEL_TITLE)


def rasterize_visibility_cpp(ext: ModuleType, screen: torch.Tensor, faces: torch.Tensor, settings):
    """Run the kernel; same contract as ``rasterize_visibility_ref``. bary / depth come back in
    float32 for float32 input (the float64 results rounded once), else in float64."""
    return tuple(ext.rasterize_forward(screen.detach(), faces, int(settings.height), int(settings.width),
                                       bool(settings.perspective), bool(settings.cull_backfaces), float(settings.near)))
