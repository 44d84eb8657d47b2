"""Where rig finds its shipped files (``rig/checkpoints/``, package data) and its user cache.

The embedded default world ships inside the package, so every install carries it: an editable
install from a checkout, ``pip install .`` and a wheel alike. ``<package>/checkpoints`` holds
``default_head/`` (the embedded head) and ``default/`` (generator, encoder, RigNet, inverter).
Callers pass paths explicitly everywhere else; this is the one place that knows the layout.
"""

from __future__ import annotations

import os
from pathlib import Path


def package_dir() -> Path:
    """The folder of the installed ``rig`` package."""
    return Path(__file__).resolve().parent


def checkpoints_dir() -> Path:
    """``<package>/checkpoints``: the embedded default head and the other shipped models."""
    return package_dir() / "checkpoints"


def default_head_path() -> Path:
    """The embedded default head in rig's ``FaceModelData`` ``.npz`` format."""
    return checkpoints_dir() / "default_head" / "default_head.npz"


def default_generator_path() -> Path:
    """The shipped generator of the default world (rig ``.safetensors``, ``G_ema`` only)."""
    return checkpoints_dir() / "default" / "generator.safetensors"


def default_encoder_path() -> Path:
    """The shipped face-parameter encoder of the default world (``rig train encoder`` format)."""
    return checkpoints_dir() / "default" / "encoder.safetensors"


def default_rignet_path() -> Path:
    """The shipped RigNet of the default generator (``rig train rignet`` format)."""
    return checkpoints_dir() / "default" / "rignet.safetensors"


def default_inverter_path() -> Path:
    """The shipped image-to-W+ inverter of the default generator (``rig train inverter`` format)."""
    return checkpoints_dir() / "default" / "inverter.safetensors"


def require_shipped(path: Path, what: str, instead: str) -> Path:
    """``path`` if that shipped file is there, else a ``CheckpointError`` saying the install lacks it.

    A shipped file is missing only when the package data did not install (a hand-copied package,
    a packager that drops data files) or was deleted: the cure is a reinstall, not training one.
    what: e.g. "the default generator"; instead: the way around it, e.g. "pass --network PATH".
    """
    if path.is_file():
        return path
    from rig.errors import CheckpointError

    raise CheckpointError(f"{what} is missing from this rig install ({path}: package data that every install "
                          f"carries); reinstall rig from its checkout or wheel (pip install --force-reinstall "
                          f"--no-deps CHECKOUT_OR_WHEEL), or {instead}")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rig`` or ``~/.cache/rig``: built kernels (``ext/``), rendered evaluation worlds (``world/``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rig"
