"""FRD and plausibility measures against closed forms."""

import numpy as np
import pytest
import torch

from rig.errors import InputError
from rig.instruments.encoder import EncoderOutput
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


def test_report_ratios_against_both_references_and_lists_the_least_drawn_units():
    from rig.world.evaluate import GeneratorReport

    gen = {"yaw": 0.2, "pitch": 0.1, "jaw": 0.05, "expr:a": 0.1, "expr:b": 0.02, "expr:c": 0.05}
    read = {"yaw": 0.4, "pitch": 0.1, "jaw": 0.05, "expr:a": 0.1, "expr:b": 0.08, "expr:c": 0.05}
    prior = {"yaw": 0.2, "pitch": 0.2, "jaw": 0.1, "expr:a": 0.2, "expr:b": 0.2, "expr:c": 0.2}
    rep = GeneratorReport(10, 1.0, 0.5, 0.9, gen, read, prior)
    assert rep.ratios("read") == pytest.approx({"yaw": 0.5, "pitch": 1, "jaw": 1, "expr:a": 1, "expr:b": 0.25, "expr:c": 1})
    assert rep.ratios("prior") == pytest.approx({"yaw": 1, "pitch": 0.5, "jaw": 0.5, "expr:a": 0.5, "expr:b": 0.1, "expr:c": 0.25})
    text = "\n".join(rep.lines())
    assert "within 25 % for 67 %" in text            # a and c of a, b, c against the encoder's reading
    assert "least drawn (vs world read by the encoder): b 0.25, a 1.00, c 1.00" in text


def test_spread_along_presets_matches_the_closed_form_for_independent_units():
    from rig.world.evaluate import spread_along_presets

    rng = np.random.default_rng(1)
    unit_std = np.array([0.5, 0.2, 0.1, 0.3])
    expr = rng.standard_normal((200_000, 4)) * unit_std
    presets = {"ab": np.array([3.0, 4.0, 0, 0]), "d": np.array([0, 0, 0, 2.0]), "none": np.zeros(4)}
    got = spread_along_presets(expr, presets)
    assert set(got) == {"ab", "d"}                        # a preset with no expression has no direction
    # std along u = sqrt(sum u_i^2 s_i^2): (0.6, 0.8) -> sqrt(0.36*0.25 + 0.64*0.04)
    assert got["ab"] == pytest.approx(np.sqrt(0.36 * 0.25 + 0.64 * 0.04), rel=0.01)
    assert got["d"] == pytest.approx(0.3, rel=0.01)
    with pytest.raises(InputError):
        spread_along_presets(expr, {"bad": np.ones(3)})


def test_report_lists_named_expressions_with_both_ratios():
    from rig.world.evaluate import GeneratorReport

    keys = {"yaw": 0.1, "pitch": 0.1, "jaw": 0.1}
    rep = GeneratorReport(10, 1.0, 0.5, 0.9, dict(keys, **{"preset:smile": 0.3}), dict(keys, **{"preset:smile": 0.4}),
                          dict(keys, **{"preset:smile": 0.5}))
    text = "\n".join(rep.lines())
    assert "named expressions (1," in text
    assert "smile       0.75 / 0.60   (0.80)" in text
    # 0.75 is inside the 25 % band, 0.60 is not; 90 % plausible misses the 95 % bar.
    assert rep.shortfalls(reference="read") == ["plausible 90.0 % < 95 %"]
    assert rep.shortfalls(reference="prior") == ["plausible 90.0 % < 95 %", "smile 0.60"]
    assert "within 25 % of the world prior): missed: plausible 90.0 % < 95 %, smile 0.60" in text
    good = GeneratorReport(10, 1.0, 0.5, 0.96, dict(keys, jaw=0.126), dict(keys), dict(keys))
    assert good.shortfalls() == ["jaw 1.26"] and good.shortfalls(tolerance=0.3) == []
    good = GeneratorReport(10, 1.0, 0.5, 0.96, dict(keys), dict(keys), dict(keys))
    assert "within 25 % of the world read by the encoder): met" in "\n".join(good.lines())


def test_preset_extremes_picks_the_furthest_images_along_each_preset():
    from rig.world.sheets import preset_extremes

    # image i is flat grey level i; expression of image i: (i, 10 - i) for the world, (2i, 0) generated
    world = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4)
    fake = (world + 100).clone()
    world_expr = np.stack([np.arange(10), 10 - np.arange(10)], 1).astype(np.float64)
    fake_expr = np.stack([2 * np.arange(10), np.zeros(10)], 1)
    presets = {"a": np.array([1.0, 0]), "b": np.array([0, 1.0]), "none": np.zeros(2)}
    grid = preset_extremes(world, world_expr, fake, fake_expr, presets, k=3)
    levels = ((grid[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()
    assert levels == [9, 8, 7, 109, 108, 107,      # "a": world by truth, generated by reading
                      0, 1, 2, 100, 101, 102]      # "b": generated readings all 0 -> stable order
    with pytest.raises(InputError):
        preset_extremes(world, world_expr, fake[:2], fake_expr[:2], presets, k=3)


def test_face_grey_is_the_central_square():
    from rig.world.evaluate import face_grey

    imgs = torch.zeros((2, 3, 16, 16), dtype=torch.uint8)
    imgs[0, :, 5:11, 5:11] = 200  # exactly the central 6 x 6 (3/8 of 16)
    imgs[1] = 50
    imgs[1, :, 4, :] = 255  # just outside the square: must not count
    assert face_grey(imgs).tolist() == [200.0, 50.0]


def test_preset_ratios_by_tone_split_light_and_dark_faces():
    from rig.world.evaluate import MIN_TONE_GROUP, preset_ratios_by_tone

    rng = np.random.default_rng(0)
    n = 400
    world = np.stack([rng.standard_normal(n), rng.standard_normal(n)], 1)
    world_grey = np.where(np.arange(n) % 5 == 0, 40.0, 150.0)  # 20 % dark
    gen = world.copy()
    gen_grey = world_grey.copy()
    dark = gen_grey < 80
    gen[~dark, 0] *= 0.5  # light faces: half the world's spread along unit 0; dark faces: twice
    gen[dark, 0] *= 2.0
    presets = {"blink": np.array([3.0, 0.0]), "mixed": np.array([1.0, 1.0])}
    out = preset_ratios_by_tone(gen, gen_grey, world, world_grey, presets)
    assert out["blink"] == pytest.approx((0.5, 2.0))
    # Along (1, 1)/sqrt(2): per group, std of (a x0 + x1)/sqrt(2) against that of (x0 + x1)/sqrt(2).
    for i, (mask, a) in enumerate(((~dark, 0.5), (dark, 2.0))):
        expect = (a * world[mask, 0] + world[mask, 1]).std() / (world[mask, 0] + world[mask, 1]).std()
        assert out["mixed"][i] == pytest.approx(expect)
    few = preset_ratios_by_tone(gen, np.full(n, 150.0), world, world_grey, presets)  # no dark fakes
    assert few["blink"][0] == pytest.approx(np.std(gen[:, 0]) / np.std(world[~dark, 0])) and np.isnan(few["blink"][1])
    assert MIN_TONE_GROUP > 1


def test_report_prints_tone_ratios_and_warns_when_they_split():
    from rig.world.evaluate import GeneratorReport

    keys = {"yaw": 0.1, "pitch": 0.1, "jaw": 0.1, "preset:blink": 0.1, "preset:smile": 0.1}
    rep = GeneratorReport(10, 1.0, 0.5, 0.96, dict(keys), dict(keys), dict(keys),
                          {"preset:blink": (0.5, 1.35), "preset:smile": (0.6, 0.74)})
    text = "\n".join(rep.lines())
    assert "light / dark: blink 0.50 / 1.35, smile 0.60 / 0.74" in text
    assert "differ by more than 0.5 for blink:" in text
    assert rep.shortfalls() == []  # a diagnostic, not part of the bar
    plain = GeneratorReport(10, 1.0, 0.5, 0.96, dict(keys), dict(keys), dict(keys))
    assert "face tone" not in "\n".join(plain.lines())


def test_label_readings_compare_each_label_with_the_world_images_of_its_preset():
    from rig.world.evaluate import GeneratorReport, label_readings

    presets = {"blink": np.array([3.0, 4.0, 0.0]), "smile": np.array([0.0, 0.0, 2.0]), "jaw_open": np.zeros(3)}
    world = np.array([[0.3, 0.4, 0.0], [0.6, 0.8, 1.0], [0.0, 0.0, 0.5], [9.0, 9.0, 9.0]])
    drawn = np.array([0, 0, 1, -1])  # index into the names below; -1: no preset
    generated = {"blink": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 7.0]]), "smile": np.array([[0.0, 0.0, 0.2]]),
                 "jaw_open": np.ones((1, 3))}
    out = label_readings(generated, world, drawn, ["blink", "smile", "jaw_open"], presets)
    # blink direction (0.6, 0.8, 0): generated 0.8 and 0.6 -> 0.7; world rows 0, 1: 0.5 and 1.0 -> 0.75
    assert out["blink"] == pytest.approx((0.7, 0.75))
    assert out["smile"] == pytest.approx((0.2, 0.5))
    assert "jaw_open" not in out  # no expression direction (and no world image of it)
    keys = {"yaw": 0.1, "pitch": 0.1, "jaw": 0.1}
    rep = GeneratorReport(10, 1.0, 0.5, 0.96, dict(keys), dict(keys), dict(keys),
                          label_readings={f"preset:{k}": v for k, v in out.items()})
    assert "world images drawn with it: blink 0.70 / 0.75, smile 0.20 / 0.50" in "\n".join(rep.lines())
