"""Bias + activation + gain + clamp, the elementwise tail of every StyleGAN2 layer.

Computes, in this order (the order the checkpoints were trained with)::

    y = act(x + b, alpha) * gain          then, if clamp is given, y = y.clamp(-clamp, clamp)

``b`` broadcasts along dimension ``dim`` of ``x``. ``bias_act_ref`` is the specification; the
``fast`` path gives the same numbers with fewer temporaries (in-place on its own intermediate),
and is only used when no gradient is needed, so autograd always sees the reference graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable

import torch
import torch.nn.functional as F

from rig.errors import InputError, ShapeError


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: ``func(x, alpha)``, its default ``alpha`` and its default output gain."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    default_alpha: float
    default_gain: float


ACTIVATIONS = MappingProxyType({
    "linear": ActivationSpec(lambda x, a: x, 0.0, 1.0),
    "relu": ActivationSpec(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": ActivationSpec(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": ActivationSpec(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": ActivationSpec(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": ActivationSpec(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": ActivationSpec(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": ActivationSpec(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": ActivationSpec(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
})


def activation_spec(act: str) -> ActivationSpec:
    """Look up an activation by name; unknown names raise ``InputError``."""
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise InputError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}") from None


def _resolve(act: str, alpha, gain, clamp):
    spec = activation_spec(act)
    alpha = float(spec.default_alpha if alpha is None else alpha)
    gain = float(spec.default_gain if gain is None else gain)
    clamp = None if clamp is None or clamp < 0 else float(clamp)
    return spec, alpha, gain, clamp


def _bias_view(x: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    if b.ndim != 1 or b.shape[0] != x.shape[dim]:
        raise ShapeError(f"bias_act: bias of shape {tuple(b.shape)} does not match x{tuple(x.shape)} along dim {dim}")
    return b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                 alpha: float | None = None, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Reference bias_act (the specification).

    Args:
        x: any-shape float tensor.
        b: (x.shape[dim],) bias or None.
        dim: the axis ``b`` runs along (1 for NCHW activations and (N, C) features).
        act: a name in ``ACTIVATIONS``.
        alpha: activation parameter (lrelu slope); None = the activation's default.
        gain: output scale; None = the activation's default gain (sqrt(2) for lrelu / relu).
        clamp: clamp the output to [-clamp, clamp]; None or negative = no clamp.
    Returns:
        Tensor of ``x``'s shape and dtype.
    """
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    if b is not None:
        x = x + _bias_view(x, b, dim)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _bias_act_fast(x, b, dim, act, alpha, gain, clamp):
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    # One fresh buffer, then in-place passes over it; x itself is never modified.
    y = x + _bias_view(x, b, dim) if b is not None else x.clone()
    if act == "lrelu":
        F.leaky_relu_(y, alpha)
    elif act == "relu":
        y.relu_()
    elif act != "linear":
        y = spec.func(y, alpha)
    if gain != 1:
        y.mul_(gain)
    if clamp is not None:
        y.clamp_(-clamp, clamp)
    return y


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto") -> torch.Tensor:
    """bias_act with an implementation switch: ``impl`` in {'ref', 'fast', 'auto'}.

    'auto' picks 'fast' when autograd is off or no input needs a gradient, else 'ref'. Arguments
    and result are as in :func:`bias_act_ref`.
    """
    if impl not in ("ref", "fast", "auto"):
        raise InputError(f"bias_act: impl must be 'ref', 'fast' or 'auto', got {impl!r}")
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    if impl == "ref" or (impl == "auto" and needs_grad):
        return bias_act_ref(x, b, dim, act, alpha, gain, clamp)
    return _bias_act_fast(x, b, dim, act, alpha, gain, clamp)
