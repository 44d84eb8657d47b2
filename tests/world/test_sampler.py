"""World sampler: parameter ranges, determinism per seed (whatever the batching), resume, alignment geometry."""

import math

import numpy as np
import pytest
import torch

from rig.errors import InputError
from rig.face_model import load_face_model
from rig.face_model.params import compose_axis_angle, euler_to_axis_angle
from rig.world import dataset as wd
from rig.world.align import ffhq_crop_frame, to_crop_pixels
from rig.world.config import WorldConfig
from rig.world.priors import draw_params, skin_albedo
from rig.world.sampler import sample_world

NAMES = tuple(f"u{i}Left" if i % 3 == 0 else f"u{i}Right" if i % 3 == 1 else f"u{i}" for i in range(12))


def test_parameter_ranges_and_consistency():
    cfg = WorldConfig()
    rows = [draw_params(cfg, 7, i, 40, NAMES) for i in range(400)]
    ypr = np.stack([r["head_ypr"] for r in rows])
    for k, lim in enumerate((35, 20, 10)):
        assert np.abs(np.degrees(ypr[:, k])).max() <= lim + 1e-9
        assert np.abs(np.degrees(ypr[:, k])).max() > 0.85 * lim  # the range is actually used
    expr = np.stack([r["expression"] for r in rows])
    assert expr.min() >= 0 and expr.max() <= cfg.expr_max and (expr > 0).mean() > 0.03
    assert np.all(np.stack([r["shape"] for r in rows])[:, cfg.n_shape:] == 0)
    jaw = np.stack([r["jaw_pose"] for r in rows])
    assert jaw[:, 0].min() >= 0 and jaw[:, 0].max() <= cfg.jaw_open_max and (jaw[:, 0] > 0).mean() > 0.2
    tones = np.array([r["skin_tone"] for r in rows])
    assert tones.min() < 0.05 and tones.max() > 0.95
    assert len({int(r["hair_style"]) for r in rows}) == len(cfg.hair_styles)
    # root (global) o neck == the head rotation that head_ypr describes
    for r in rows[:20]:
        head = euler_to_axis_angle(*r["head_ypr"].astype(np.float64))
        np.testing.assert_allclose(compose_axis_angle(r["global_pose"].astype(np.float64), r["neck_pose"].astype(np.float64)), head, atol=1e-5)
    # deterministic per (seed, index), different across indices and seeds
    a, b = draw_params(cfg, 7, 3, 40, NAMES), draw_params(cfg, 7, 3, 40, NAMES)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["shape"], draw_params(cfg, 8, 3, 40, NAMES)["shape"])


def test_presets_drawn_at_their_rate_and_bounded():
    cfg = WorldConfig(preset_prob=0.5)
    table = {"smile": (np.linspace(0, 1, 12).astype(np.float32), 0.1), "blink": (np.full(12, 0.4, np.float32), 0.0)}
    rows = [draw_params(cfg, 1, i, 10, NAMES, table) for i in range(400)]
    which = np.array([r["preset"] for r in rows])
    assert set(which) == {-1, 0, 1} and abs((which >= 0).mean() - 0.5) < 0.08
    smiles = [r for r in rows if r["preset"] == 1]  # sorted names: blink=0, smile=1
    for r in smiles:
        e = r["expression"]
        assert e.min() >= 0 and e.max() <= 1 and r["jaw_pose"][0] >= 0.05 - 1e-6  # strength >= 0.5 of 0.1 rad
        assert e[-1] >= 0.5 - 1e-6  # the preset's last unit (1.0) at strength >= 0.5
    assert all(r["preset"] == -1 for r in (draw_params(cfg, 1, i, 10, NAMES) for i in range(20)))


def test_albedo_coefficients_span_the_skin_tone_range():
    names = ("skin_tone", "skin_redness", "lip_colour")
    rows = [draw_params(WorldConfig(), 2, i, 10, NAMES, None, names) for i in range(300)]
    a = np.stack([r["albedo"] for r in rows])
    assert a.shape == (300, 3) and np.abs(a).max() <= 2
    assert a[:, 0].min() < -1.9 and a[:, 0].max() > 1.9 and abs(a[:, 0].mean()) < 0.25  # uniform on [-2, 2]
    assert 0.8 < a[:, 1].std() < 1.1  # N(0, 1) clipped at 2 sd
    np.testing.assert_allclose([r["skin_tone"] for r in rows], (a[:, 0] + 2) / 4, atol=1e-6)


def test_skin_tone_range_spans_light_to_dark():
    lum = [skin_albedo(t) @ np.array([0.2126, 0.7152, 0.0722]) for t in np.linspace(0, 1, 10)]
    assert lum[0] > lum[4] > lum[6] > lum[9]  # Monk 1 > 5 > 7 > 10 (swatches 2-3 are near-equal)
    assert lum[0] / lum[-1] > 10  # lightest vs darkest: the full human range
    # tone 0 is Monk swatch 1 (f6ede4) in linear RGB, scaled by 0.8
    np.testing.assert_allclose(skin_albedo(0.0) / 0.8, [0.921582, 0.846873, 0.775822], atol=1e-5)


def test_ffhq_frame_is_similarity_invariant():
    """The crop coordinates of the eyes and mouth do not depend on where, how big or how rotated the face is."""
    pts = torch.tensor([[[40.0, 50.0], [60.0, 50.0], [44.0, 75.0], [56.0, 75.0]]])
    base = None
    for angle, scale, shift in [(0.0, 1.0, (0, 0)), (0.3, 1.7, (13, -4)), (-0.5, 0.6, (-20, 30))]:
        R = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        p = pts @ R.T * scale + torch.tensor(shift, dtype=torch.float32)
        c, x, y = ffhq_crop_frame(p[:, 0], p[:, 1], p[:, 2], p[:, 3])
        crop = to_crop_pixels(p, c, x, y, 64)
        assert abs(float(crop[0, 0, 1] - crop[0, 1, 1])) < 1e-4  # eyes level
        if base is None:
            base = crop
        assert torch.allclose(crop, base, atol=1e-3)
    # FFHQ geometry: eye distance 20, eye-mouth 25 -> half side max(40, 45) = 45 px.
    c, x, y = ffhq_crop_frame(pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3], rotate=False)
    assert torch.allclose(x, torch.tensor([[45.0, 0.0]])) and torch.allclose(c, torch.tensor([[50.0, 52.5]]))


@pytest.fixture(scope="module")
def default_model_available():
    try:
        load_face_model("default")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"default head not available: {e}")


def test_sampler_deterministic_across_shardings_and_resumes(tmp_path, default_model_available):
    cfg = WorldConfig(resolution=16, supersample=1, preset_prob=0.0)  # presets: see the pure-function test
    sample_world(tmp_path / "a", 6, seed=5, cfg=cfg, shard_size=4, batch=4, progress=False)
    sample_world(tmp_path / "b", 6, seed=5, cfg=cfg, shard_size=3, batch=2, progress=False)
    a, b = wd.WorldDataset(tmp_path / "a"), wd.WorldDataset(tmp_path / "b")
    assert len(a) == len(b) == 6
    np.testing.assert_array_equal(a.load_images(progress=False).numpy(), b.load_images(progress=False).numpy())
    for k in a.params:  # drawn values exactly; projected points up to float32 batch-order rounding
        if k in ("landmarks_2d", "crop_frame"):
            np.testing.assert_allclose(a.params[k], b.params[k], atol=1e-4)
        else:
            np.testing.assert_array_equal(a.params[k], b.params[k])
    imgs = a.load_images(progress=False).float()
    assert imgs.std() > 10  # not blank
    assert a.params["landmarks_2d"].shape == (6, 68, 2) and a.params["crop_frame"].shape == (6, 3, 2)
    # resume: a removed shard marker is redone identically, finished shards are skipped
    before = (wd.shard_path(tmp_path / "b", 1) / "00000004.png").read_bytes()
    (wd.shard_path(tmp_path / "b", 1) / wd.PARAMS_FILE).unlink()
    assert sample_world(tmp_path / "b", 6, seed=5, cfg=cfg, shard_size=3, batch=2, progress=False) == 3
    assert (wd.shard_path(tmp_path / "b", 1) / "00000004.png").read_bytes() == before
    assert sample_world(tmp_path / "b", 6, seed=5, cfg=cfg, shard_size=3, batch=2, progress=False) == 0
    with pytest.raises(InputError, match="different seed"):
        sample_world(tmp_path / "b", 6, seed=6, cfg=cfg, shard_size=3, progress=False)


def test_albedo_tints_stay_skin_coloured_on_dark_skin(default_model_available):
    from rig.world.render import WorldRenderer

    model = load_face_model("default")
    if model.data.albedo_basis is None:
        pytest.skip("default head has no albedo model")
    renderer = WorldRenderer(model, WorldConfig(resolution=16))
    names = list(model.data.albedo_names)
    for tone in (-2.0, 0.0, 2.0):
        for lip in (-2.0, 2.0):
            c = np.zeros(len(names))
            c[names.index("skin_tone")] = tone
            c[names.index("lip_colour")] = lip
            lips = renderer._albedo_colours(c)[renderer.region["lips"]].mean(0)
            assert lips[0] >= lips[1] and lips[0] >= lips[2], (tone, lip, lips)  # never teal / green lips
