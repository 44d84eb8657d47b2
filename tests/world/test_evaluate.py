"""FRD and plausibility measures against closed forms."""

import numpy as np
import pytest
import torch

from rig.errors import InputError
from rig.world.encoder import EncoderOutput
from rig.world.evaluate import frechet_distance, frechet_from_moments, plausible_faces


def test_frechet_of_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    # diagonal: |mu1-mu2|^2 + sum (s1 - s2)^2
    expect = 1 + 0 + 4 + (4 + 1 + 0)
    assert np.isclose(frechet_from_moments(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2)), expect)


def test_frechet_of_samples():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    b = rng.standard_normal((4000, 3)) * 2 + 1   # FD -> 3*1 + 3*(2-1)^2 = 6
    assert frechet_distance(a, b) == pytest.approx(6, rel=0.08)
    with pytest.raises(InputError):
        frechet_distance(a, b[:, :2])


def test_plausible_faces_needs_score_and_landmarks_inside():
    lmk = torch.full((3, 68, 2), 10.0)
    lmk[1, 5, 0] = 33.0  # outside a 32 px image
    out = EncoderOutput(torch.zeros(3, 4), torch.zeros(3, 2), torch.zeros(3, 3), torch.zeros(3, 3), lmk,
                        torch.tensor([1.0, 1.0, -1.0]))
    assert plausible_faces(out, 32).tolist() == [True, False, False]
