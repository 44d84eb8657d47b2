"""Silhouette antialiasing: coverage equals area, and edge gradients equal the edge length."""

import torch

from rig.render.antialias import antialias
from rig.render.rasterize import RasterSettings, rasterize


def _square(x0, y0, x1, y1, z=1.0):
    screen = torch.tensor([[[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]]], dtype=torch.float64)
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])
    return screen, faces


def _coverage(screen, faces, H=24, W=24):
    frags = rasterize(screen, faces, RasterSettings(H, W, impl="ref"))
    colour = frags.mask[..., None].to(screen.dtype)
    return antialias(colour, frags, screen, faces)[..., 0]


def test_antialiased_coverage_of_a_square_equals_its_area():
    for x0, y0, x1, y1 in ((3.3, 4.1, 17.8, 15.6), (2.05, 2.95, 20.45, 9.5)):
        screen, faces = _square(x0, y0, x1, y1)
        cov = _coverage(screen, faces)
        assert abs(cov.sum().item() - (x1 - x0) * (y1 - y0)) < 0.3
        assert cov.min() >= 0 and cov.max() <= 1


def test_edge_gradient_equals_edge_length_and_matches_finite_differences():
    screen, faces = _square(3.3, 4.1, 17.8, 15.6)
    screen.requires_grad_(True)
    total = _coverage(screen, faces).sum()
    (g,) = torch.autograd.grad(total, screen)
    # moving the right edge (vertices 1, 2) right by dx grows the area by height * dx; the pixel
    # estimate counts the pixel rows whose centres the edge spans (12 for a height of 11.5)
    height = 15.6 - 4.1
    assert abs((g[0, 1, 0] + g[0, 2, 0]).item() - height) <= 0.5 + 1e-9
    assert abs((g[0, 0, 1] + g[0, 1, 1]).item() + (17.8 - 3.3)) <= 0.5 + 1e-9  # top edge down shrinks it
    # finite differences of the (piecewise-linear) antialiased image, small steps within one pixel
    eps = 1e-3
    for k, axis in ((1, 0), (3, 1)):
        sp, sm = screen.detach().clone(), screen.detach().clone()
        sp[0, k, axis] += eps
        sm[0, k, axis] -= eps
        fd = (_coverage(sp, faces).sum() - _coverage(sm, faces).sum()) / (2 * eps)
        assert abs(fd.item() - g[0, k, axis].item()) < 1e-6


def test_interior_pixels_are_untouched():
    screen, faces = _square(3.3, 4.1, 17.8, 15.6)
    frags = rasterize(screen, faces, RasterSettings(24, 24, impl="ref"))
    colour = torch.rand(1, 24, 24, 3, dtype=torch.float64)
    out = antialias(colour, frags, screen, faces)
    assert torch.equal(out[0, 6:14, 6:16], colour[0, 6:14, 6:16])
    assert torch.equal(out[0, 0:2], colour[0, 0:2])


def test_occlusion_edge_coverage_and_gradient():
    # A front square (faces 2, 3; colour 1) over a back square (faces 0, 1; colour 0).
    back, fb = _square(1.0, 1.0, 23.0, 23.0, z=2.0)
    front, ff = _square(6.3, 5.4, 15.7, 17.2, z=1.0)
    screen = torch.cat([back, front], dim=1).requires_grad_(True)
    faces = torch.cat([fb, ff + 4])
    frags = rasterize(screen, faces, RasterSettings(24, 24, impl="ref"))
    colour = (frags.pix_to_face >= 2)[..., None].to(torch.float64)
    out = antialias(colour, frags, screen, faces)[..., 0]
    assert abs(out.sum().item() - (15.7 - 6.3) * (17.2 - 5.4)) < 0.3
    (g,) = torch.autograd.grad(out.sum(), screen)
    # the front square's right edge (vertices 5, 6) moving right grows it by about its height
    assert abs((g[0, 5, 0] + g[0, 6, 0]).item() - (17.2 - 5.4)) <= 0.5 + 1e-9
    # the back square's edges lie against the background: colour 0 on both sides, no gradient
    assert g[0, :4].abs().max() == 0
