"""StyleGAN2 losses and regularisers as pure functions of tensors.

``D`` logits are raw (pre-sigmoid) scores, shape (N, 1) or (N,). Images are float (N, C, H, W) in
about [-1, 1]. Every function returns a per-sample loss (N,), leaving the reduction and the lazy-
regularisation gain to the caller.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _per_sample(logits: torch.Tensor) -> torch.Tensor:
    """(N,) or (N, 1) logits -> (N,)."""
    return logits.reshape(logits.shape[0], -1).mean(1)


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z))) = softplus(-logit), per sample (N,)."""
    return F.softplus(-_per_sample(fake_logits))


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """softplus(D(fake)) + softplus(-D(real)), per sample (N,) (real and fake batches the same size)."""
    return F.softplus(_per_sample(fake_logits)) + F.softplus(-_per_sample(real_logits))


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """||d sum(D(x)) / dx||^2 per sample (N,); ``real_images`` (N, ...) must require grad (any
    per-sample shape: images, or the (N, K) readings of ``reading_d``).

    The graph is kept (create_graph) so the penalty itself can be back-propagated into D.
    """
    (grads,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True, only_inputs=True)
    return grads.square().flatten(1).sum(1)


def path_length(images: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample path length ||J_w^T y|| (N,) for image-space noise ``y`` = ``noise`` / sqrt(H*W).

    ``images``: (N, C, H, W) produced from ``ws`` (N, num_ws, w_dim), which must require grad.
    ``noise``: standard normal of the images' shape (passed in so the caller owns the RNG).
    The squared gradient is summed over w_dim and averaged over the num_ws copies, as StyleGAN2 does.
    """
    h, w = images.shape[2], images.shape[3]
    y = noise / math.sqrt(h * w)
    (grads,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True, only_inputs=True)
    return grads.square().sum(2).mean(1).sqrt()
