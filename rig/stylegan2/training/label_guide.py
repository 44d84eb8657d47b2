"""Label guidance for class-conditional training: a classifier of the training labels whose verdict on
each fake joins G's loss.

A conditional StyleGAN2 D judges an (image, label) pair by projecting its last features on the
label's embedding, so it tells G that a fake does not match its label only as far as that projection
has learnt the label's look. On rig's world it had not: 92 kimg after lifting rig's generator to 12
preset labels, D scored real blink images only 0.17 logits higher under the label 'blink' than under
'none', and real anger images *lower* under 'anger'. G drew each preset at a third to a half of the
world's strength when given its label (docs/world.md).

A classifier trained on the real images' labels (cross-entropy) has nothing else to learn. G's loss
adds ``label_weight`` times the classifier's cross-entropy of each fake against the label it was
drawn with, which pushes a fake labelled 'blink' towards what the classifier has seen blinks look
like. It is the auxiliary classifier of AC-GAN (Odena et al. 2017) as a network of its own trained on
reals only, or the classifier guidance of StyleGAN-XL (Sauer et al. 2022) with a classifier trained
alongside on the dataset instead of a pretrained one. It is not the face encoder that measures the
generator, which never sees training.
"""

from __future__ import annotations

import torch
from torch import nn

from rig.stylegan2.config import EpilogueConfig
from rig.stylegan2.layers import FullyConnectedLayer
from rig.stylegan2.networks import Discriminator, DiscriminatorConfig


class LabelClassifier(nn.Module):
    """img (N, C, S, S) in [-1, 1] -> (N, n_classes) logits.

    rig's StyleGAN2 D body (resnet blocks) of the given width, without the minibatch-stddev layer (a
    classifier judges each image alone), whose last layer gives one logit per class.
    """

    def __init__(self, n_classes: int, resolution: int, img_channels: int, channel_base: int, channel_max: int):
        super().__init__()
        self.n_classes = n_classes
        self.body = Discriminator(DiscriminatorConfig(
            img_resolution=resolution, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, epilogue=EpilogueConfig(mbstd_num_channels=0)))
        self.body.b4.out = FullyConnectedLayer(self.body.b4.out.in_features, n_classes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.body(img)


def label_loss(classifier: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of ``classifier``'s logits for ``images`` (N, C, S, S) against ``classes`` (N,)
    int64, and the fraction it gets right (a detached scalar)."""
    logits = classifier(images)
    loss = torch.nn.functional.cross_entropy(logits, classes)
    return loss, (logits.detach().argmax(1) == classes).float().mean()
