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
    """MLP critic on (N, K) readings -> (N, 1) logits: K -> hidden -> hidden -> 1, leaky ReLU(0.2).

    The readings are first standardised by the buffers ``shift`` / ``scale`` (K,), which
    ``fit_input`` sets from real readings: a reader's outputs can differ in scale by 100x (rig's
    encoder reads an eyelid unit with ~0.9 std and a brow unit with ~0.1), and an MLP learns the small
    ones that much more slowly. Scales are floored at a tenth of the median so that readings the data
    never moves stay near zero instead of becoming amplified noise.
    """

    def __init__(self, n_readings: int, hidden: int = 256):
        super().__init__()
        self.n_readings = n_readings
        self.net = nn.Sequential(nn.Linear(n_readings, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        self.register_buffer("shift", torch.zeros(n_readings))
        self.register_buffer("scale", torch.ones(n_readings))

    @torch.no_grad()
    def fit_input(self, real_readings: torch.Tensor) -> None:
        """Set ``shift`` / ``scale`` to the mean / std (floored) of (N, K) real readings, N >= 2."""
        if real_readings.ndim != 2 or real_readings.shape[0] < 2:
            raise ValueError(f"ReadingDiscriminator.fit_input: needs (N >= 2, K) readings, got {tuple(real_readings.shape)}")
        std = real_readings.std(0)
        self.shift.copy_(real_readings.mean(0))
        self.scale.copy_(std.clamp_min(0.1 * float(std.median().clamp_min(1e-8))))

    def forward(self, readings: torch.Tensor) -> torch.Tensor:
        if readings.ndim != 2 or readings.shape[1] != self.n_readings:
            raise ValueError(f"ReadingDiscriminator: expected (N, {self.n_readings}) readings, got {tuple(readings.shape)}")
        return self.net((readings - self.shift) / self.scale)


@torch.no_grad()
def read_images(reader: nn.Module, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """(N, K) readings of uint8 images (N, C, S, S), read ``batch`` at a time."""
    return torch.cat([reader(x.float() / 127.5 - 1) for x in images.split(batch)])

