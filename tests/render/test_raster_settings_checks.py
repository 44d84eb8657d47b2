"""RasterSettings refuses sizes and fields that are wrong before anything is allocated."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import InputError
from rig.render.rasterize import MAX_IMAGE_SIDE, RasterSettings


@pytest.mark.parametrize("height, width, match", [
    (0, 0, "height must be within 1..8192"),
    (64, -3, "width must be within"),
    (100_000, 100_000, "height must be within 1..8192 pixels, got 100000"),
    (64, MAX_IMAGE_SIDE + 1, "width must be within"),
    (64.0, 64, "height must be an integer"),
    (True, 64, "height must be an integer"),
    ("64", 64, "height must be an integer"),
])
def test_bad_sizes_are_refused(height, width, match):
    with pytest.raises(InputError, match=match):
        RasterSettings(height, width)


@pytest.mark.parametrize("kwargs, match", [
    ({"near": float("nan")}, "near must be a finite"),
    ({"near": float("inf")}, "near must be a finite"),
    ({"near": "0.1"}, "near must be a finite"),
    ({"perspective": "yes"}, "perspective must be True or False"),
    ({"cull_backfaces": 2}, "cull_backfaces must be True or False"),
    ({"impl": "cuda"}, "impl must be"),
])
def test_bad_fields_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        RasterSettings(16, 16, **kwargs)


def test_numpy_integers_become_plain_ints_and_the_bound_is_allowed():
    s = RasterSettings(np.int64(48), np.int32(MAX_IMAGE_SIDE), perspective=np.bool_(False))
    assert (s.height, s.width, s.perspective) == (48, MAX_IMAGE_SIDE, False)
    assert type(s.height) is int and type(s.width) is int and type(s.perspective) is bool
