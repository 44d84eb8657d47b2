"""The shipped default inverter on held-out world renders, and an inverted face steered by rig puppet."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rig.paths import checkpoints_dir

pytestmark = pytest.mark.skipif(not (checkpoints_dir() / "default" / "inverter.safetensors").is_file(),
                                reason="the default inverter is not shipped in this checkout")


@pytest.fixture(scope="module")
def world_crops():
    """Four renders of world seed 0 (which no shipped network trained on) and their true landmarks."""
    from rig.world.dataset import WorldDataset
    from rig.world.encoder_run import eval_world_dir

    ds = WorldDataset(eval_world_dir(64, 4, seed=0, progress=False))
    return np.stack([ds.image(i) for i in range(4)])


def test_default_inverter_and_optimisation_on_unseen_world_renders(world_crops):
    from rig.invert.inverter import load_inverter
    from rig.invert.losses import EncoderTerms
    from rig.invert.optimize import OptimizeConfig
    from rig.invert.pipeline import InvertConfig, invert_crops, to_float
    from rig.invert.losses import psnr
    from rig.stylegan2.checkpoints import load_generator

    G = load_generator("default")
    bundle = load_inverter("default")
    assert bundle.check_generator(G) == []
    invs = invert_crops(G, bundle.net, EncoderTerms(), world_crops, InvertConfig(OptimizeConfig(steps=40)))
    t = to_float(world_crops)
    p0 = psnr(to_float(np.stack([v.image_inverter for v in invs])), t)
    p1 = psnr(to_float(np.stack([v.image for v in invs])), t)
    assert p0.median() > 18, p0
    assert (p1 > p0 + 0.5).all(), (p0, p1)


def test_puppet_steers_an_inverted_face(world_crops, tmp_path):
    from PIL import Image

    from rig.cli import main

    crop = tmp_path / "crop.png"
    Image.fromarray(world_crops[1]).save(crop)
    face = tmp_path / "face.npz"
    r = CliRunner().invoke(main, ["invert", str(crop), "-o", str(face), "--steps", "20", "--quiet"])
    assert r.exit_code == 0, r.output
    with np.load(face, allow_pickle=False) as z:
        names = [str(n) for n in z["control_names"]]
        yaw0 = np.degrees(z["controls"][names.index("yaw")])
    out = tmp_path / "turned.png"
    r = CliRunner().invoke(main, ["puppet", "--face", str(face), "--yaw", "20", "-o", str(out), "--save-face",
                                  str(tmp_path / "turned.npz")])
    assert r.exit_code == 0, r.output
    assert out.is_file()
    with np.load(tmp_path / "turned.npz", allow_pickle=False) as z:
        prov = json.loads(str(z["provenance"]))
    assert prov["parent"]["made_by"] == "rig invert"
    from rig.rignet.editor import Editor

    ed = Editor.load("default")
    turned = ed.open_face(tmp_path / "turned.npz")
    yaw1 = np.degrees(ed.controls_of(turned)[ed.space.index("yaw")])
    assert abs((yaw1 - yaw0) - 20) < 6, (yaw0, yaw1)
