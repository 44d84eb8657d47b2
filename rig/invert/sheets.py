"""Pictures of inversions: the stages of one, and the evaluation's rows (target | inverter | optimised |
tuned | edited), built on ``rig.rignet.sheets.grid``."""

from __future__ import annotations

import numpy as np

from rig.rignet.sheets import grid, upscale


def stage_images(inv) -> tuple[list[str], list[np.ndarray]]:
    """(labels, images) of an ``Inversion``: target, the inverter's guess, optimised, tuned (if any)."""
    labels, images = ["target", "inverter", "optimised"], [inv.target, inv.image_inverter, inv.image]
    if inv.image_tuned is not None:
        labels.append("tuned")
        images.append(inv.image_tuned)
    return labels, images


def stages_strip(inv, display_size: int | None = None) -> np.ndarray:
    """One labelled row of an inversion's stages, upsampled to ``display_size`` for viewing."""
    labels, images = stage_images(inv)
    size = display_size or max(128, images[0].shape[0])
    return grid([[upscale(im, size) for im in images]], labels)


def rows_sheet(rows: list[list[np.ndarray]], labels: list[str], display_size: int = 96) -> np.ndarray:
    """Rows of (S, S, 3) images under column labels, upsampled to ``display_size``."""
    return grid([[upscale(im, display_size) for im in row] for row in rows], labels)
