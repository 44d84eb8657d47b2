"""Local critics: extra discriminators that each judge one fixed square region of the images.

On aligned faces every feature sits at nearly the same pixels (``rig.world.align`` puts the eyes on a
fixed line), so a critic that sees only the eye band spends all of its capacity there. rig's pixel D
scored the world's closed-eye images no higher than its open-eye ones (docs/world.md): at 64 px an
eyelid is a few pixels of a 4,096-pixel image, and the whole-image critic is satisfied by everything
else. A local critic's logistic loss has nothing else to look at. It is the local discriminator of
face-completion GANs (Iizuka et al. 2017, Li et al. 2017) used on a whole generated image.

A region is ``LocalRegion(name, top, left, size)`` in fractions of the image side; ``size`` times the
training resolution must be a power of two >= 4 (the critic is rig's StyleGAN2 ``Discriminator`` at
that resolution). ``FACE_REGIONS`` holds the boxes measured on rig's aligned world faces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from rig.errors import InputError


@dataclass(frozen=True)
class LocalRegion:
    """A square image region, as fractions of the image side: rows [top, top + size), columns
    [left, left + size)."""

    name: str
    top: float
    left: float
    size: float

    def pixels(self, resolution: int) -> tuple[int, int, int]:
        """(top, left, size) in pixels at ``resolution``; raises ``InputError`` unless the box lies inside
        the image and its side is a whole power of two >= 4 pixels."""
        top, left, size = (round(v * resolution) for v in (self.top, self.left, self.size))
        if abs(self.size * resolution - size) > 1e-6 or size < 4 or size & (size - 1):
            raise InputError(f"local critic '{self.name}': side {self.size} x {resolution} px is not a whole power of "
                             "two >= 4 pixels")
        if top < 0 or left < 0 or top + size > resolution or left + size > resolution:
            raise InputError(f"local critic '{self.name}': box rows {top}..{top + size}, columns {left}..{left + size} "
                             f"is not inside the {resolution} px image")
        return top, left, size

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """The region of images (N, C, S, S) as (N, C, s, s), s = ``size`` * S (a view)."""
        top, left, size = self.pixels(images.shape[-1])
        return images[..., top:top + size, left:left + size]

    def check(self, resolution: int) -> "LocalRegion":
        """Raise ``InputError`` unless the name is a lower-case identifier (it names the critic in
        snapshots: ``D_<name>``) and the box fits ``resolution`` (see ``pixels``); return self."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name) or self.name == "read":
            raise InputError(f"local critic name '{self.name}' must be a lower-case identifier other than 'read'")
        self.pixels(resolution)
        return self


# Boxes on rig's FFHQ-aligned world faces. Measured on the 68 ground-truth landmarks of 16,384 images
# of world seed 1 at 64 px: eyes (points 36-47) x 20-44, y 27-33 px and brows (17-26) y 19-29 px
# (1st-99th percentile); mouth (48-67) x 25-39, y 42-54 px. 'eyes' (rows 14-46, columns 16-48 at
# 64 px) held every eye point, 98.7 % of the brow points (the outer ends leave it on turned heads) and
# the top of the nose; 'mouth' (rows 32-64) every mouth point, the chin and the nostrils.
FACE_REGIONS: dict[str, LocalRegion] = {
    "eyes": LocalRegion("eyes", 0.21875, 0.25, 0.5),
    "mouth": LocalRegion("mouth", 0.5, 0.25, 0.5),
}


def parse_local_regions(items) -> tuple[LocalRegion, ...]:
    """CLI words -> regions: a name of ``FACE_REGIONS`` or ``NAME=TOP,LEFT,SIZE`` (fractions).

    Raises ``InputError`` on anything else or on a repeated name."""
    out = []
    for item in items:
        name, sep, box = item.strip().partition("=")
        name = name.strip()
        if not sep:
            if name not in FACE_REGIONS:
                raise InputError(f"--local-d: '{item}' is neither one of {', '.join(FACE_REGIONS)} nor NAME=TOP,LEFT,SIZE")
            out.append(FACE_REGIONS[name])
            continue
        try:
            top, left, size = (float(v) for v in box.split(","))
        except ValueError:
            raise InputError(f"--local-d: '{item}' is not NAME=TOP,LEFT,SIZE with three fractions of the image side") from None
        if not name:
            raise InputError(f"--local-d: '{item}' has no name")
        out.append(LocalRegion(name, top, left, size))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise InputError(f"--local-d: a region name is repeated ({', '.join(names)})")
    return tuple(out)
