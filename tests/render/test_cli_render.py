"""`rig render` end to end: files, and depth/mask equal to a ray cast of `rig mesh`'s OBJ under the saved camera."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rig.cli import main
from rig.io.obj import read_obj
from rig.paths import default_head_path
from render_helpers import ray_cast_depth


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _check_against_obj(tmp_path, model, flags, size):
    out = tmp_path / "r.png"
    res = _run("render", "--face-model", model, *flags, "--size", size, "--passes", "rgb,depth,mask",
               "--save-npy", "-o", out)
    assert res.exit_code == 0, res.output
    res = _run("mesh", "--face-model", model, *flags, "-o", tmp_path / "m.obj")
    assert res.exit_code == 0, res.output
    cam = json.loads((tmp_path / "r.camera.json").read_text())
    assert set(cam) >= {"K", "R", "t", "width", "height"} and cam["width"] == size
    depth = np.load(tmp_path / "r_depth.npy", allow_pickle=False)
    mask = np.load(tmp_path / "r_mask.npy", allow_pickle=False)
    assert depth.dtype == np.float32 and mask.dtype == np.bool_ and depth.shape == (size, size)
    assert np.array_equal(np.isinf(depth), ~mask)
    mesh = read_obj(tmp_path / "m.obj")
    face, z = ray_cast_depth(torch.as_tensor(mesh.vertices), torch.as_tensor(mesh.faces), torch.tensor(cam["K"]),
                             torch.tensor(cam["R"]), torch.tensor(cam["t"]), size, size, chunk=256)
    hit = (face >= 0).numpy()
    assert hit.mean() > 0.2
    assert (hit == mask).mean() >= 0.999
    both = hit & mask
    assert np.allclose(depth[both], z.numpy()[both], rtol=0, atol=1e-5)  # float32 metres
    sheet = Image.open(out)
    assert sheet.size == (3 * size, size)
    for name in ("rgb", "depth", "mask"):
        assert Image.open(tmp_path / f"r_{name}.png").size == (size, size)


def test_render_matches_ray_cast_of_mesh_obj_flame_fixture(tmp_path, flame_fixture_dir):
    _check_against_obj(tmp_path, flame_fixture_dir / "generic_model.pkl", ["--yaw", "20", "--pitch", "-10", "--jaw", "12"],
                       48)


def test_render_matches_ray_cast_of_mesh_obj_default_head(tmp_path):
    if not default_head_path().is_file():
        pytest.skip("default head not built")
    _check_against_obj(tmp_path, "default", ["--expr", "smile", "--yaw", "25"], 40)


def test_render_rejects_unknown_pass_and_bad_output(tmp_path, flame_fixture_dir):
    pkl = flame_fixture_dir / "generic_model.pkl"
    res = CliRunner().invoke(main, ["render", "--face-model", str(pkl), "--passes", "rgb,xray", "-o", str(tmp_path / "a.png")])
    assert res.exit_code == 1 and "xray" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["render", "--face-model", str(pkl), "--size", "16", "-o", str(tmp_path / "a.jpg")])
    assert res.exit_code == 1 and "a.jpg" in res.output
    res = CliRunner().invoke(main, ["render", "--face-model", str(pkl), "--light", "disco", "-o", str(tmp_path / "a.png")])
    assert res.exit_code == 1 and "disco" in res.output
