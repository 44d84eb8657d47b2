"""``rig puppet`` on the shipped default generator and RigNet: sources, edits, sweeps, videos, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rig.cli import main
from rig.paths import checkpoints_dir

RIGNET = checkpoints_dir() / "default" / "rignet.safetensors"
pytestmark = pytest.mark.skipif(not RIGNET.is_file(), reason=f"the default RigNet {RIGNET} is not built")


def run(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    return result.exit_code, result.output


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_seed_without_edit_reproduces_rig_generate(tmp_path):
    code, out = run("generate", "--network", "default", "--seeds", "5", "--outdir", tmp_path / "gen", "--save-w")
    assert code == 0, out
    code, out = run("puppet", "--seed", 5, "-o", tmp_path / "p.png")
    assert code == 0, out
    assert np.array_equal(png(tmp_path / "p.png"), png(tmp_path / "gen" / "seed0005.png"))
    # The saved W+ as a bare latent gives the same image too.
    code, out = run("puppet", "--latent", tmp_path / "gen" / "seed0005_w.npy", "-o", tmp_path / "l.png")
    assert code == 0, out
    assert np.array_equal(png(tmp_path / "l.png"), png(tmp_path / "p.png"))


def test_yaw_edit_turns_the_face_and_the_face_file_round_trips(tmp_path):
    code, out = run("puppet", "--seed", 3, "--yaw", 20, "-o", tmp_path / "y.png", "--save-face", tmp_path / "y.npz",
                    "--save-w", "--side-by-side", "--display-size", 128)
    assert code == 0, out
    target = json.loads(out.split("target ")[1].split("; output reads")[0])
    got = json.loads(out.split("output reads ")[1].splitlines()[0])
    assert abs(got["yaw"] - target["yaw"]) < 6, out
    assert png(tmp_path / "y.png").shape == (128, 256, 3)       # rig render | GAN image, upsampled
    assert png(tmp_path / "y_native.png").shape == (64, 64, 3)  # the raw output stays native
    assert np.load(tmp_path / "y_w.npy").shape == (10, 128)
    code, out = run("puppet", "--face", tmp_path / "y.npz", "-o", tmp_path / "again.png")
    assert code == 0, out
    assert np.array_equal(png(tmp_path / "again.png"), png(tmp_path / "y_native.png"))


def test_sweep_writes_sheet_frames_and_targets(tmp_path):
    code, out = run("puppet", "--seed", 1, "--sweep", "yaw=-20:20:3", "--sweep", "expr:smile=0:1:2", "--absolute",
                    "--frames-dir", tmp_path / "frames", "-o", tmp_path / "sheet.png")
    assert code == 0, out
    frames = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(frames) == 6
    targets = json.loads((tmp_path / "frames" / "targets.json").read_text())
    assert [t["target_deg"]["yaw"] for t in targets[:3]] == [-20.0, 0.0, 20.0]
    assert targets[3]["request"]["expr"] == ["smile:1"]
    assert png(tmp_path / "sheet.png").shape[0] > 2 * 64


def test_params_sequence_writes_a_video(tmp_path):
    import av

    seq = {"global_pose": [[0, 0, 0], [0, 0.05, 0], [0, 0.1, 0]], "jaw_pose": [[0, 0, 0], [0.05, 0, 0], [0.1, 0, 0]]}
    (tmp_path / "seq.json").write_text(json.dumps(seq))
    code, out = run("puppet", "--seed", 2, "--params", tmp_path / "seq.json", "-o", tmp_path / "v.mp4", "--fps", 10)
    assert code == 0, out
    with av.open(str(tmp_path / "v.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3


@pytest.mark.parametrize("args, message", [
    (["--seed", 1, "--expr", "grin"], "unknown expression preset 'grin'"),
    (["--seed", 1, "--unit", "mouthFrown=0.5"], "unknown expression unit"),
    (["--seed", 1, "--unit", "eyeLookInLeft=0.5"], "never saw this unit vary"),
    (["--seed", 1, "--yaw", 80, "--absolute"], "yaw 80.0 deg is beyond what this generator draws"),
    (["--seed", 1, "--pitch", -60], "pitch"),
    (["--seed", 1, "--yaw", "nan"], "not a finite number"),
    (["--seed", 1, "--seed", 2, "--face", "x.npz"], "exactly one source"),
    (["--seed", 1, "--sweep", "yaw=1:2"], "expected PARAM=A:B:N"),
    (["--seed", 1, "--class", "grumpy"], "unknown class"),
])
def test_bad_input_gives_one_line_and_writes_nothing(tmp_path, args, message):
    code, out = run("puppet", *args, "-o", tmp_path / "out.png")
    assert code == 1, out
    assert message in out and len(out.strip().splitlines()) == 1, out
    assert not any(tmp_path.iterdir())


def test_latent_of_the_wrong_shape_is_refused(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((9, 128), np.float32))
    code, out = run("puppet", "--latent", tmp_path / "w.npy", "-o", tmp_path / "out.png")
    assert code == 1 and "(9, 128); this network takes (10, 128)" in out, out
    assert not (tmp_path / "out.png").exists()


def test_rignet_of_another_generator_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(RIGNET), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["generator_identity"] = "0123456789abcdef"
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata=meta)
    code, out = run("puppet", "--rignet", tmp_path / "other.safetensors", "--seed", 1, "-o", tmp_path / "out.png")
    assert code == 1 and "belongs to another generator" in out and "0123456789abcdef" in out, out
    assert not (tmp_path / "out.png").exists()


def test_refine_reports_the_control_error_before_and_after(tmp_path):
    code, out = run("puppet", "--seed", 4, "--expr", "smile", "--refine", 3, "-o", tmp_path / "r.png",
                    "--save-face", tmp_path / "r.npz")
    assert code == 0, out
    line = next(l for l in out.splitlines() if l.startswith("refine 3 steps"))
    before, after = (float(x) for x in line.split("control error ")[1].split(" (")[0].split(" -> "))
    assert after < before
    from rig.rignet.face import load_face

    assert load_face(tmp_path / "r.npz", 10, 128).provenance["refine"]["steps"] == 3


def test_label_cli_resumes_and_counts_unreadable(tmp_path):
    code, out = run("label", "--network", "default", "--out", tmp_path / "lab", "--n", 12, "--shard-size", 8,
                    "--batch", 4, "--quiet")
    assert code == 0, out
    assert "12 samples" in out and "readable" in out
    code, out = run("label", "--network", "default", "--out", tmp_path / "lab", "--n", 12, "--shard-size", 8, "--quiet")
    assert code == 0 and "labelled" not in out  # nothing left to do
