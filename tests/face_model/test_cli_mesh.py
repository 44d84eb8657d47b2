"""``rig mesh`` / ``rig info``: the fixture's reference cases through the CLI, flags, and one-line
errors for missing, corrupt, hostile and malformed inputs."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from rig.cli import main
from rig.io.obj import read_obj

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def run_cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0
    assert len(lines) == 1 and lines[0].startswith("rig: error:"), result.output
    return lines[0]


@pytest.mark.parametrize("k", range(4))
def test_mesh_reproduces_reference_vertices(tmp_path, flame_pkl, reference_arrays, reference_forward, k):
    params = tmp_path / "P.npz"
    np.savez(params, **reference_arrays(k))
    result = run_cli("mesh", "--face-model", flame_pkl, "--params", params, "-o", tmp_path / "m.obj")
    assert result.exit_code == 0, result.output
    mesh = read_obj(tmp_path / "m.obj")
    assert np.abs(mesh.vertices - reference_forward[f"verts_{k}"]).max() <= 1e-6
    assert np.array_equal(mesh.faces, pickle_faces(flame_pkl))


def pickle_faces(path: Path) -> np.ndarray:
    from rig.face_model.flame_pkl import load_flame_pickle

    return load_flame_pickle(path)["f"].astype(np.int64)


def test_mesh_in_a_real_subprocess(tmp_path, flame_pkl, reference_arrays, reference_forward):
    params = tmp_path / "P.json"
    params.write_text(json.dumps({k: v.tolist() for k, v in reference_arrays(1).items()}))
    out = tmp_path / "m.obj"
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "mesh", "--face-model", str(flame_pkl), "--params",
                           str(params), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert np.abs(read_obj(out).vertices - reference_forward["verts_1"]).max() <= 1e-6
    # And a hostile file fails the same way from a real process, with nothing executed.
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x02cposix\nsystem\nX" + len(f"touch {marker}").to_bytes(4, "little")
                     + f"touch {marker}".encode() + b"\x85R.")
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "mesh", "--face-model", str(evil), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "posix.system" in proc.stderr
    assert "Traceback" not in proc.stderr and not marker.exists()


def test_yaw_pitch_roll_and_jaw_flags_match_explicit_params(tmp_path, flame_pkl):
    run_cli("mesh", "--face-model", flame_pkl, "--yaw", 30, "--pitch", -10, "--roll", 5, "--jaw", 12, "-o", tmp_path / "a.obj")
    rotvec = Rotation.from_euler("YXZ", [30, -10, 5], degrees=True).as_rotvec()
    (tmp_path / "p.json").write_text(json.dumps({"global_pose": rotvec.tolist(), "jaw_pose": [math.radians(12), 0, 0]}))
    run_cli("mesh", "--face-model", flame_pkl, "--params", tmp_path / "p.json", "-o", tmp_path / "b.obj")
    a, b = read_obj(tmp_path / "a.obj").vertices, read_obj(tmp_path / "b.obj").vertices
    assert np.abs(a - b).max() < 1e-8 and np.abs(a - read_obj_neutral(tmp_path, flame_pkl)).max() > 1e-3


def read_obj_neutral(tmp_path, flame_pkl):
    run_cli("mesh", "--face-model", flame_pkl, "-o", tmp_path / "n.obj")
    return read_obj(tmp_path / "n.obj").vertices


def test_positive_yaw_turns_the_face_towards_plus_x(tmp_path, flame_pkl):
    neutral = read_obj_neutral(tmp_path, flame_pkl)
    run_cli("mesh", "--face-model", flame_pkl, "--yaw", 20, "-o", tmp_path / "y.obj")
    turned = read_obj(tmp_path / "y.obj").vertices
    front = np.argmax(neutral[:, 2])  # the most forward vertex (nose side)
    assert turned[front, 0] > neutral[front, 0] + 1e-3


def test_sequence_params_write_one_obj_per_frame(tmp_path, flame_pkl, reference_arrays, reference_forward):
    frames = [reference_arrays(k) for k in (0, 3)]
    seq = {key: np.stack([f[key] for f in frames]) for key in frames[0]}
    np.savez(tmp_path / "seq.npz", **seq)
    result = run_cli("mesh", "--face-model", flame_pkl, "--params", tmp_path / "seq.npz", "-o", tmp_path / "s.obj")
    assert result.exit_code == 0, result.output
    for i, k in enumerate((0, 3)):
        assert np.abs(read_obj(tmp_path / f"s_{i:04d}.obj").vertices - reference_forward[f"verts_{k}"]).max() <= 1e-6


def test_missing_corrupt_and_hostile_face_models_are_one_line_errors(tmp_path, flame_pkl):
    out = tmp_path / "m.obj"
    assert "not found" in one_line_error(run_cli("mesh", "--face-model", tmp_path / "nope.pkl", "-o", out))
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(flame_pkl.read_bytes()[:3000])
    assert "corrupt.pkl" in one_line_error(run_cli("mesh", "--face-model", corrupt, "-o", out))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "generic_model.pkl"
    evil.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    line = one_line_error(run_cli("mesh", "--face-model", evil, "-o", out))
    assert "refused" in line and not marker.exists() and not out.exists()


def test_missing_default_head_says_the_install_lacks_it(tmp_path, monkeypatch):
    import rig.face_model.loading as loading

    monkeypatch.setattr(loading, "default_head_path", lambda: tmp_path / "default_head.npz")
    line = one_line_error(run_cli("mesh", "-o", tmp_path / "m.obj"))
    assert "missing from this rig install" in line and "reinstall rig" in line and "--face-model PATH" in line


@pytest.mark.parametrize("content, suffix, expect", [
    ({"expression": np.zeros(101)}, ".npz", "'expression' has 101 values"),
    ({"shape": np.zeros(301)}, ".npz", "'shape' has 301 values"),
    ({"jaw_pose": [0.1, 0.2]}, ".json", "'jaw_pose' has 2 values"),
    ({"smile": [1.0]}, ".json", "unknown key"),
    ({"expression": np.zeros((3, 10)), "jaw_pose": np.zeros((2, 3))}, ".npz", "disagree on the number of frames"),
    ("{not json", ".json", "not valid JSON"),
    ({"shape": [0.0]}, ".txt", "must end in .npz or .json"),
])
def test_bad_parameter_files_are_one_line_errors(tmp_path, flame_pkl, content, suffix, expect):
    path = tmp_path / f"bad{suffix}"
    if isinstance(content, str):
        path.write_text(content)
    elif suffix == ".npz":
        np.savez(path, **content)
    else:
        path.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in content.items()}))
    line = one_line_error(run_cli("mesh", "--face-model", flame_pkl, "--params", path, "-o", tmp_path / "m.obj"))
    assert expect in line and str(path) in line


def test_info_lists_versions_and_the_given_face_model(flame_pkl):
    result = run_cli("info", "--face-model", flame_pkl)
    assert result.exit_code == 0
    assert "torch" in result.output and "numpy" in result.output and "devices: cpu" in result.output
    assert "162 vertices, 320 triangles, 300 shape + 100 expression components, 68 landmarks" in result.output


def test_expr_flag_applies_the_preset(tmp_path, flame_pkl):
    import torch

    from rig.face_model import expression_preset, load_face_model

    result = run_cli("mesh", "--face-model", flame_pkl, "--expr", "smile", "-o", tmp_path / "s.obj")
    assert result.exit_code == 0, result.output
    model = load_face_model(flame_pkl, dtype=torch.float64)
    e, jaw = expression_preset(model, "smile")
    p = model.zero_params()
    p.expression[:] = e
    p.jaw_pose[:] = jaw
    assert np.abs(read_obj(tmp_path / "s.obj").vertices - model(p).vertices[0].numpy()).max() < 1e-8
    line = one_line_error(run_cli("mesh", "--face-model", flame_pkl, "--expr", "grin", "-o", tmp_path / "g.obj"))
    assert "unknown expression preset 'grin'" in line


def test_default_head_mesh_carries_uvs(tmp_path):
    from rig.paths import default_head_path

    if not default_head_path().is_file():
        pytest.skip("default head not built yet")
    result = run_cli("mesh", "--yaw", 15, "-o", tmp_path / "d.obj")
    assert result.exit_code == 0, result.output
    mesh = read_obj(tmp_path / "d.obj")
    assert mesh.uv_coords is not None and mesh.uv_faces.shape == mesh.faces.shape
    assert np.all((mesh.uv_coords >= 0) & (mesh.uv_coords <= 1))
