"""The scripts in ``examples/`` run end to end and write what they promise.

Each script runs in a subprocess exactly as a user would start it. They need a trained RigNet: the
shipped default (``rig/checkpoints/default/rignet.safetensors``) or the file named by ``RIG_TEST_RIGNET``
(relative to the repository root, e.g. ``runs/rignet-a/rignet.safetensors`` before a default
is shipped).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rig.paths import checkpoints_dir
from rig.rignet.sheets import grid

REPO = Path(__file__).resolve().parents[1]
SIZE = 192  # the scripts' default display height


def _rignet_args() -> list[str]:
    override = os.environ.get("RIG_TEST_RIGNET")
    if override:
        return ["--rignet", override]
    if not (checkpoints_dir() / "default" / "rignet.safetensors").is_file():
        pytest.skip("no default RigNet (rig/checkpoints/default/rignet.safetensors) yet; "
                    "set RIG_TEST_RIGNET=path/to/rignet.safetensors to run the examples against another")
    return []


def _run(script: str, out: Path) -> str:
    res = subprocess.run([sys.executable, str(REPO / "examples" / script), "--out", str(out), *_rignet_args()],
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"{script} failed:\n{res.stdout}\n{res.stderr}"
    assert out.is_file(), f"{script} did not write {out}"
    return res.stdout


def test_yaw_pitch_sweep_writes_a_22_frame_gif(tmp_path):
    out = tmp_path / "sweep.gif"
    _run("yaw_pitch_sweep_gif.py", out)
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.size == (SIZE, SIZE)
        assert gif.n_frames == 22  # 11 yaw frames then 11 pitch frames
    assert not [p for p in tmp_path.iterdir() if p != out], "temporary files left beside the output"


def test_transfer_expression_writes_a_three_face_strip_and_readings(tmp_path):
    out = tmp_path / "transfer.png"
    stdout = _run("transfer_expression.py", out)
    with Image.open(out) as png:
        assert png.size == (3 * SIZE, SIZE)
    for name in ("mouthSmileLeft", "eyeBlinkLeft", "jaw_x", "B with A's expression"):
        assert name in stdout


def test_smile_strength_strip_writes_six_labelled_cells_and_readings(tmp_path):
    out = tmp_path / "smile.png"
    stdout = _run("smile_strength_strip.py", out)
    # The strip's size is grid()'s layout of six SIZE x SIZE cells under a label row.
    cell = np.zeros((SIZE, SIZE, 3), np.uint8)
    want_h, want_w = grid([[cell] * 6], col_labels=["x"] * 6).shape[:2]
    with Image.open(out) as png:
        assert png.size == (want_w, want_h)
    rows = [line.split() for line in stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [float(r[0]) for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
