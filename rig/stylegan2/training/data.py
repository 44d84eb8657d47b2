"""``ImageStream``: an endless, resumable, seeded stream of training batches from in-memory images.

Each epoch visits every image (and, with x-flip, every mirrored image) once in an order drawn from
``seed`` and the epoch number alone, so the stream's whole state is two integers (epoch, position)
and a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import re

import torch

from rig.errors import InputError


class ImageStream:
    """Batches of float images in [-1, 1] from ``images`` (N, C, H, W) uint8.

    With ``xflip`` the stream covers 2N items: item i >= N is image i - N mirrored left-right.
    """

    def __init__(self, images: torch.Tensor, seed: int, xflip: bool = False):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) == 0:
            raise InputError(f"training images must be a non-empty (N, C, H, W) uint8 tensor, got {tuple(images.shape)} {images.dtype}")
        self.images = images
        self.seed = int(seed)
        self.xflip = bool(xflip)
        self.epoch = 0
        self.position = 0
        self._order = self._epoch_order(0)

    def __len__(self) -> int:
        return len(self.images) * (2 if self.xflip else 1)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self), generator=gen)

    def next(self, batch: int) -> torch.Tensor:
        """The next ``batch`` images as float32 (batch, C, H, W) in [-1, 1] (crossing epochs as needed)."""
        return self.next_indexed(batch)[0]

    def next_indexed(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``next(batch)``, the (batch,) int64 indices into ``images`` the batch came from (a mirrored
        item gives its source image's index) and which items are mirrored (batch,) bool."""
        picks = []
        while len(picks) < batch:
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._epoch_order(self.epoch)
            take = min(batch - len(picks), len(self._order) - self.position)
            picks.extend(self._order[self.position:self.position + take].tolist())
            self.position += take
        n = len(self.images)
        idx = torch.tensor(picks)
        imgs = self.images[idx % n]
        flip = idx >= n
        if flip.any():
            imgs[flip] = imgs[flip].flip(3)
        return imgs.to(torch.float32) / 127.5 - 1.0, idx % n, flip

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict) -> None:
        """Restore ``state()``; ``ValueError`` unless epoch is an integer in 0..2^40 and position one
        in 0..the epoch's length (the state comes from a snapshot file)."""
        epoch, position = state["epoch"], state["position"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (epoch, position)) or not 0 <= epoch <= 1 << 40:
            raise ValueError(f"data-order state {{epoch: {epoch!r:.40}, position: {position!r:.40}}} is not two integers")
        order = self._epoch_order(epoch)
        if not 0 <= position <= len(order):
            raise ValueError(f"data-order position {position} is outside the epoch's 0..{len(order)}")
        self.epoch, self.position, self._order = epoch, position, order


def mirrored_classes(class_names) -> torch.Tensor:
    """Each class's index after a left-right mirror of its image (K,) int64: a name with ``left`` or
    ``right`` words (``wink_left``, ``none+left_eye_closed``) maps to its twin with each swapped
    (``wink_right``), every other class to itself.

    A class-conditional run with x-flip needs it: a mirrored left wink is a right wink, and keeping its
    label would teach G that either label means either wink. Raises ``InputError`` for a sided class
    without its twin (such a dataset cannot be x-flipped).
    """
    names = list(class_names)
    swap = {"left": "right", "right": "left"}
    order = []
    for name in names:
        words = re.split(r"([^A-Za-z0-9]+)", name)  # words and the separators between them ('_', '+')
        twin = "".join(swap.get(word, word) for word in words)
        if twin not in names:
            raise InputError(f"class {name!r} has no mirrored twin {twin!r}: train without x-flip")
        order.append(names.index(twin))
    return torch.tensor(order, dtype=torch.int64)
