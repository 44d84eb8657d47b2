"""The face-model forward refuses NaN, infinite and absurd parameters with an InputError naming the
field, and passes large-but-sane values through unchanged."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rig.errors import InputError
from rig.face_model.model import MAX_PARAM_ABS


@pytest.mark.parametrize("field, bad, what", [
    ("expression", float("nan"), "NaN"),
    ("global_pose", float("inf"), "infinite"),
    ("translation", -float("inf"), "infinite"),
    ("shape", 1e30, "1e\\+30"),
    ("jaw_pose", 2 * MAX_PARAM_ABS, "2e\\+04"),
])
def test_non_finite_or_absurd_parameters_are_refused(flame_model64, field, bad, what):
    p = flame_model64.zero_params(2)
    t = getattr(p, field).clone()
    t[1, 0] = bad
    p = dataclasses.replace(p, **{field: t})
    with pytest.raises(InputError, match=f"'{field}' holds 1 value.*first: {what}"):
        flame_model64(p)


def test_values_up_to_the_bound_pass_and_grad_still_flows(flame_model64):
    p = flame_model64.zero_params(1)
    shape = torch.zeros_like(p.shape)
    shape[0, 0] = MAX_PARAM_ABS
    expression = torch.zeros_like(p.expression).requires_grad_(True)
    out = flame_model64(dataclasses.replace(p, shape=shape, expression=expression))
    assert torch.isfinite(out.vertices).all()
    out.vertices.sum().backward()
    assert expression.grad is not None and torch.isfinite(expression.grad).all()
