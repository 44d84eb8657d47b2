"""A second critic for StyleGAN2 training that judges what a frozen *reader* network reads off images.

The pixel discriminator scores each image on its own, so a generator that never draws a rare state
(closed eyes, say) pays nothing for it: every image it does draw looks real. A reader - here rig's
face encoder, which reads expression, jaw and head pose off an image - turns each image into a few
dozen numbers. ``ReadingDiscriminator`` is a small MLP that tells real readings from generated ones;
in that low-dimensional space a missing mode is the easiest cue it has, and G's loss gets the
gradient (through the frozen reader, into the pixels) that moves fakes towards it. This is the
idea of discriminating on a frozen pretrained network's outputs (Projected GANs, Sauer et al. 2021)
applied to a reader of the quantities a rig must be able to steer.

The reader must be frozen (no parameter gradients, eval mode) and map float images (N, C, S, S) in
[-1, 1] to (N, K) readings of about unit scale. Measure results with a *different* reader than the
one trained against: a generator can learn what one network wants to see.
"""

from __future__ import annotations

import torch
from torch import nn


class ReadingDiscriminator(nn.Module):
    """MLP critic on (N, K) readings -> (N, 1) logits: K -> hidden -> hidden -> 1, leaky ReLU(0.2)."""

    def __init__(self, n_readings: int, hidden: int = 256):
        super().__init__()
        self.n_readings = n_readings
        self.net = nn.Sequential(nn.Linear(n_readings, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, readings: torch.Tensor) -> torch.Tensor:
        if readings.ndim != 2 or readings.shape[1] != self.n_readings:
            raise ValueError(f"ReadingDiscriminator: expected (N, {self.n_readings}) readings, got {tuple(readings.shape)}")
        return self.net(readings)


def reader_width(reader: nn.Module, channels: int, resolution: int) -> int:
    """K, the number of readings ``reader`` returns per image (one blank image is read to find out)."""
    with torch.no_grad():
        out = reader(torch.zeros((1, channels, resolution, resolution)))
    if out.ndim != 2 or out.shape[0] != 1:
        raise ValueError(f"reader returns {tuple(out.shape)} for one image, expected (1, K)")
    return int(out.shape[1])
