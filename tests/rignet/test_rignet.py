"""RigNet's networks, training, control space, edit targets, face files and generator identity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rig.errors import InputError
from rig.rignet.controls import ControlSpace, encoder_control_names, group_of, space_from_readings
from rig.rignet.edit import EditRequest, edit_targets, parse_expr, parse_unit
from rig.rignet.face import Face, check_latent, load_face
from rig.rignet.model import ParamReader, RigNet, RigNetConfig, layer_control_mask, parse_layers

EXPR = ("eyeBlinkLeft", "eyeBlinkRight", "eyeLookInLeft", "mouthSmileLeft", "mouthSmileRight", "jawOpen")


def small_space(frozen=("eyeLookInLeft", "jaw_y", "jaw_z")) -> ControlSpace:
    names = encoder_control_names(EXPR)
    rng = np.random.default_rng(0)
    readings = rng.normal(0, 0.1, (500, len(names)))
    yaw = names.index("yaw")
    readings[:, yaw] = rng.uniform(-math.radians(35), math.radians(35), 500)
    readings[:, names.index("jaw_x")] = rng.uniform(0, math.radians(20), 500)
    return space_from_readings(names, readings, frozen)


def test_groups_and_frozen_controls():
    space = small_space()
    assert [group_of(n) for n in ("yaw", "jaw_x", "eyeBlinkLeft", "mouthSmileLeft", "eyeLookInLeft")] == \
        ["pose", "jaw", "eyes", "expression", "expression"]
    names = space.names
    assert [names[i] for i in space.group_indices("eyes")] == ["eyeBlinkLeft", "eyeBlinkRight"]
    assert "eyeLookInLeft" not in [names[i] for i in space.group_indices("expression")]
    assert [names[i] for i in space.group_indices("jaw")] == ["jaw_x"]
    assert space.active.sum() == len(names) - 3
    q = torch.randn(4, space.size, dtype=torch.float64)
    assert torch.allclose(space.normalise(space.denormalise(q)), q)
    assert ControlSpace.from_json(json.loads(json.dumps(space.to_json()))).names == names


def test_zero_edit_returns_w_exactly_and_layers_outside_a_group_never_move():
    space = small_space()
    cfg = RigNetConfig(layers={"pose": (0, 1), "jaw": (1, 2), "expression": (2, 3), "eyes": (3,)})
    torch.manual_seed(0)
    net = RigNet(6, 16, space, cfg)
    for p in net.parameters():  # a trained-looking net, not the near-zero initial one
        p.data.normal_(0, 0.3)
    ws = torch.randn(5, 6, 16)
    src = torch.randn(5, space.size)
    # The delta design: D(e, 0) - D(e, 0) in one batch is exactly 0, so w comes back bit for bit.
    assert torch.equal(net(ws, src, src), ws)
    # Changing only the yaw moves only the pose layers (0, 1); layers 4 and 5 belong to no group.
    t = src.clone()
    t[:, space.index("yaw")] += 1.0
    moved = (net(ws, src, t) - ws).abs().amax(dim=(0, 2))
    assert moved[:2].min() > 1e-3 and moved[2:].max() == 0
    # A frozen control is never steered.
    t = src.clone()
    t[:, space.index("eyeLookInLeft")] += 3.0
    assert torch.equal(net(ws, src, t), ws)
    mask = layer_control_mask(space, cfg, 6)
    assert mask[4:].sum() == 0 and mask[0, space.index("yaw")] == 1 and mask[0, space.index("jaw_x")] == 0


def test_absolute_design_is_not_exact_at_zero_edit_without_training():
    space = small_space()
    torch.manual_seed(0)
    net = RigNet(6, 16, space, RigNetConfig(design="absolute"))
    ws, src = torch.randn(3, 6, 16), torch.randn(3, space.size)
    assert not torch.equal(net(ws, src, src), ws)


def test_parse_layers_and_bad_configs():
    assert parse_layers("pose=0-3,jaw=1,3") == {"pose": (0, 1, 2, 3), "jaw": (1, 3)}
    with pytest.raises(InputError, match="unknown group"):
        parse_layers("head=0-3")
    with pytest.raises(InputError, match="outside"):
        RigNet(4, 8, small_space(), RigNetConfig(layers={"pose": (0, 7)}))


def test_reader_shape_check():
    reader = ParamReader(6, 16, 9)
    assert reader(torch.randn(2, 6, 16)).shape == (2, 9)
    with pytest.raises(Exception, match=r"\(B, 6, 16\)"):
        reader(torch.randn(2, 5, 16))


CAL = {"presets": {"neutral": None, "smile": None, "blink": None},
       "units": {"mouthSmileLeft": {"slope": 0.5, "intercept": 0.02, "corr": 0.8}}, "frozen": ["eyeLookInLeft"]}


def _calibration(space):
    cal = json.loads(json.dumps(CAL))
    neutral = np.zeros(space.size)
    smile = neutral.copy()
    smile[space.index("mouthSmileLeft")] = 0.4
    smile[space.index("jaw_x")] = 0.05
    blink = neutral.copy()
    blink[space.index("eyeBlinkLeft")] = blink[space.index("eyeBlinkRight")] = 0.6
    cal["presets"] = {"neutral": neutral.tolist(), "smile": smile.tolist(), "blink": blink.tolist()}
    return cal


def test_edit_targets_relative_absolute_presets_units_eyes():
    space = small_space()
    cal = _calibration(space)
    src = space.mean.copy()
    src[space.index("yaw")] = math.radians(5)
    src[space.index("mouthSmileLeft")] = 0.1
    y, j, s = space.index("yaw"), space.index("jaw_x"), space.index("mouthSmileLeft")
    t, edited = edit_targets(space, cal, src, EditRequest(yaw=10))
    assert t[y] == pytest.approx(math.radians(15)) and edited.sum() == 1
    assert np.array_equal(np.delete(t, y), np.delete(src, y))  # unset flags keep the source's values
    t, _ = edit_targets(space, cal, src, EditRequest(yaw=10, absolute=True))
    assert t[y] == pytest.approx(math.radians(10))
    t, _ = edit_targets(space, cal, src, EditRequest(expr=(("smile", 0.5),)))
    assert t[s] == pytest.approx(0.1 + 0.5 * 0.4) and t[j] == pytest.approx(src[j] + 0.025)
    t, _ = edit_targets(space, cal, src, EditRequest(expr=(("smile", 1.0),), absolute=True))
    assert t[s] == pytest.approx(0.4)
    t, _ = edit_targets(space, cal, src, EditRequest(expr=(("smile", 1.0),), jaw=3, absolute=True))
    assert t[j] == pytest.approx(math.radians(3))  # an explicit --jaw wins over the preset's jaw
    t, _ = edit_targets(space, cal, src, EditRequest(units=(("mouthSmileLeft", 0.2),)))
    assert t[s] == pytest.approx(0.1 + 0.5 * 0.2)
    t, _ = edit_targets(space, cal, src, EditRequest(units=(("mouthSmileLeft", 0.2),), absolute=True))
    assert t[s] == pytest.approx(0.02 + 0.5 * 0.2)
    t, _ = edit_targets(space, cal, src, EditRequest(eyes="closed"))
    assert t[space.index("eyeBlinkLeft")] == pytest.approx(0.6)


@pytest.mark.parametrize("req, message", [
    (EditRequest(expr=(("grin", 1.0),)), "unknown expression preset 'grin'"),
    (EditRequest(units=(("eyeLookInLeft", 0.5),)), "never saw this unit vary"),
    (EditRequest(units=(("mouthFrown", 0.5),)), "unknown expression unit"),
    (EditRequest(yaw=80, absolute=True), r"yaw 80.0 deg is beyond what this generator draws \(-3"),
    (EditRequest(jaw=-30, absolute=True), r"jaw_x -30.0 deg is beyond"),
    (EditRequest(yaw=float("nan")), "not a finite number"),
])
def test_edit_targets_refuse_bad_requests(req, message):
    space = small_space()
    with pytest.raises(InputError, match=message):
        edit_targets(space, _calibration(space), space.mean.copy(), req)


def test_edit_targets_without_calibration_refuse_expressions():
    space = small_space()
    with pytest.raises(InputError, match="head pose and jaw only"):
        edit_targets(space, None, space.mean.copy(), EditRequest(expr=(("smile", 1.0),)))


def test_parse_expr_and_unit():
    assert parse_expr("smile") == ("smile", 1.0) and parse_expr("smile:0.5") == ("smile", 0.5)
    assert parse_unit("mouthSmileLeft=0.4") == ("mouthSmileLeft", 0.4)
    for bad in ("smile:x", "smile:inf", "smile:5"):
        with pytest.raises(InputError):
            parse_expr(bad)
    for bad in ("mouthSmileLeft", "=3", "a=nan", "a=9"):
        with pytest.raises(InputError):
            parse_unit(bad)


def test_face_file_round_trip_and_checks(tmp_path):
    ws = torch.randn(6, 16)
    face = Face(ws, "0123456789abcdef", {"seed": 3, "class": "smile"}, np.arange(4.0), ("a", "b", "c", "d"))
    face.save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as z:  # plain arrays only
        assert sorted(z.files) == ["control_names", "controls", "format", "generator_identity", "provenance", "ws"]
    back = load_face(tmp_path / "f.npz", 6, 16)
    assert torch.equal(back.ws, ws) and back.generator_identity == face.generator_identity
    assert back.provenance == face.provenance and back.control_names == face.control_names
    with pytest.raises(InputError, match=r"latent of shape \(6, 16\); this network takes \(7, 16\)"):
        load_face(tmp_path / "f.npz", 7, 16)
    assert check_latent(np.ones(16, np.float32), 6, 16, "x").shape == (6, 16)
    with pytest.raises(InputError, match="NaN or inf"):
        check_latent(np.full((6, 16), np.nan, np.float32), 6, 16, "x")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(InputError, match="not a rig face file"):
        load_face(tmp_path / "other.npz", 6, 16)


def test_generator_identity_survives_rig_convert(tiny_generator_file, tmp_path):
    from rig.stylegan2.checkpoints import convert, load_generator
    from rig.stylegan2.identity import generator_identity

    G = load_generator(tiny_generator_file)
    convert(tiny_generator_file, tmp_path / "tiny.pt")
    assert generator_identity(load_generator(tmp_path / "tiny.pt")) == generator_identity(G)
    G2 = load_generator(tiny_generator_file)
    with torch.no_grad():
        next(G2.parameters()).add_(1e-3)
    from rig.stylegan2.identity import forget_identity

    forget_identity(G2)
    assert generator_identity(G2) != generator_identity(G)


def test_label_set_is_deterministic_and_resumable(tiny_generator_file, tiny_labels, tmp_path):
    from rig.rignet.labels import LabelConfig, LabelSet, label_latents, sample_ws
    from rig.stylegan2.checkpoints import load_generator

    L = LabelSet.load(tiny_labels)
    assert L.ws.shape == (256, 6, 16) and L.controls.shape[0] == 256
    G = load_generator(tiny_generator_file)
    ws, _ = sample_ws(G, 0, np.arange(100, 104))
    assert torch.allclose(ws, L.ws[100:104], atol=1e-6)
    mixed = (L.ws[:, 0] - L.ws[:, -1]).abs().amax(1) > 0
    assert 0.3 < mixed.float().mean() < 0.7  # mix_prob 0.5
    # Asking the same folder for another set is refused, not mixed in.
    with pytest.raises(InputError, match="different seed"):
        label_latents(LabelConfig(str(tiny_generator_file), tiny_labels, 256, seed=1, shard_size=128), progress=False)


def test_reader_and_rignet_train_and_their_losses_drop(tiny_generator_file, tiny_labels, tmp_path):
    from rig.rignet.files import load_rignet
    from rig.rignet.train import RigNetTrainConfig, train_rignet
    from rig.stylegan2.checkpoints import load_generator

    cfg = RigNetTrainConfig(reader_steps=150, reader_batch=64, steps=150, batch=32, g_steps=30, g_batch=8,
                            calibrate=False, snapshot_s=1e9,
                            rignet=RigNetConfig(layers={"pose": (0, 1), "jaw": (1, 2, 3), "expression": (1, 2, 3),
                                                        "eyes": (2, 3, 4)}))
    out = train_rignet(str(tiny_generator_file), tiny_labels, tmp_path / "run", cfg, progress=False)
    rows = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]

    def first_last(phase, key):
        vals = [r[key] for r in rows if r["phase"] == phase]
        return np.mean(vals[:2]), np.mean(vals[-2:])

    a, b = first_last("reader", "reader")
    assert b < 0.8 * a
    a, b = first_last("rignet", "edit")
    assert b < a
    assert any(r["phase"] == "generator" for r in rows)
    bundle = load_rignet(out)
    G = load_generator(tiny_generator_file)
    assert bundle.check_generator(G) == []
    # The same run folder is not silently reused.
    with pytest.raises(InputError, match="not empty"):
        train_rignet(str(tiny_generator_file), tiny_labels, tmp_path / "run", cfg, progress=False)
    # A RigNet is refused on another generator, with both identities in the message.
    from rig.stylegan2.checkpoints import load_generator as lg

    other = lg("default")
    with pytest.raises(InputError, match="belongs to another generator"):
        bundle.check_generator(other)


def test_training_resumes_to_the_same_result(tiny_generator_file, tiny_labels, tmp_path):
    from rig.rignet.files import load_rignet
    from rig.rignet.train import RigNetTrainConfig, train_rignet

    base = dict(reader_batch=32, batch=16, g_steps=0, calibrate=False, snapshot_s=0.0)
    full = RigNetTrainConfig(reader_steps=40, steps=40, **base)
    a = load_rignet(train_rignet(str(tiny_generator_file), tiny_labels, tmp_path / "a", full, progress=False))
    # Stop after the reader phase (same settings, the run interrupted), then resume.
    import rig.io.run_log as run_log

    real = run_log.append_log_line

    def stop_in_rignet(path, record):
        real(path, record)
        if record["phase"] == "rignet" and record["step"] >= 25:
            raise KeyboardInterrupt

    run_log.append_log_line = stop_in_rignet
    try:
        with pytest.raises(KeyboardInterrupt):
            train_rignet(str(tiny_generator_file), tiny_labels, tmp_path / "b", full, progress=False)
    finally:
        run_log.append_log_line = real
    b = load_rignet(train_rignet(str(tiny_generator_file), tiny_labels, tmp_path / "b", full, resume=True,
                                 progress=False))
    for k, v in a.rignet.state_dict().items():
        assert torch.allclose(b.rignet.state_dict()[k], v, atol=1e-5), k


def test_a_fine_tuned_copy_that_names_its_parent_takes_the_parents_rignet(tiny_generator_file, tmp_path):
    from rig.rignet.files import RigNetBundle
    from rig.stylegan2.checkpoints import load_generator, save_networks
    from rig.stylegan2.identity import forget_identity, generator_identity

    G = load_generator(tiny_generator_file)
    parent = generator_identity(G)
    with torch.no_grad():
        next(G.parameters()).add_(0.01)  # "pivotal tuning"
    forget_identity(G)
    save_networks(tmp_path / "tuned.safetensors", {"G_ema": G}, extra={"parent_identity": parent})
    tuned = load_generator(tmp_path / "tuned.safetensors")
    assert tuned.parent_identity == parent and generator_identity(tuned) != parent
    bundle = RigNetBundle(None, None, small_space(), parent, "encoder", None, {}, "parent.safetensors")
    notices = bundle.check_generator(tuned)
    assert len(notices) == 1 and "fine-tuned copy" in notices[0]


def test_track_labeler_reads_pose_off_the_default_generator(tmp_path):
    pytest.importorskip("dlib")
    from rig.rignet.labels import LabelConfig, LabelSet, label_latents

    label_latents(LabelConfig("default", tmp_path / "lab", 8, labeler="track", shard_size=8, batch=8), progress=False)
    L = LabelSet.load(tmp_path / "lab")
    assert L.names == ("yaw", "pitch", "roll", "jaw_x")
    assert L.readable.sum() >= 6  # dlib finds most default-world faces once upsampled
    ok = L.readable
    assert np.all(np.abs(L.controls[ok, 0].numpy()) < math.radians(60))
    assert np.all(L.controls[~ok].numpy() == 0)  # unreadable rows are flagged, not labelled
