"""Where rig finds its shipped files (the ``checkpoints/`` folder of the repository).

rig is installed editable from its checkout, so the folder sits next to the ``rig`` package:
``<repo>/rig/paths.py`` -> ``<repo>/checkpoints``. Callers pass paths explicitly everywhere else;
this is the one place that knows the layout.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The folder holding the ``rig`` package (the repository root in an editable install)."""
    return Path(__file__).resolve().parent.parent


def checkpoints_dir() -> Path:
    """``<repo>/checkpoints``: the embedded default head and other shipped models."""
    return repo_root() / "checkpoints"


def default_head_path() -> Path:
    """The embedded default head in rig's ``FaceModelData`` ``.npz`` format."""
    return checkpoints_dir() / "default_head" / "default_head.npz"


def default_generator_path() -> Path:
    """The shipped generator of the default world (rig ``.safetensors``, ``G_ema`` only)."""
    return checkpoints_dir() / "default" / "generator.safetensors"


def default_encoder_path() -> Path:
    """The shipped face-parameter encoder of the default world (``rig train encoder`` format)."""
    return checkpoints_dir() / "default" / "encoder.safetensors"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rig`` or ``~/.cache/rig``: built kernels (``ext/``), rendered evaluation worlds (``world/``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rig"
