"""The world commands wired end to end on a tiny world: sample -> train generator -> train encoder -> eval."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from rig.cli import main


def _run(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_sample_train_eval_on_tiny_world(tmp_path):
    try:
        from rig.face_model import load_face_model

        load_face_model("default")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"default head not available: {e}")
    data, run, enc = tmp_path / "w", tmp_path / "run", tmp_path / "enc.safetensors"
    _run(["world", "sample", "--n", "24", "--size", "16", "--seed", "1", "--out", str(data), "--shard-size", "12", "--quiet"])
    assert "rendered 0 images" in _run(["world", "sample", "--n", "24", "--size", "16", "--seed", "1", "--out", str(data),
                                        "--shard-size", "12", "--quiet"])
    out = _run(["train", "generator", "--data", str(data), "--out", str(run), "--config", "tiny", "--kimg", "0.008", "--quiet"])
    assert "trained to 0.008 kimg" in out
    out = _run(["train", "generator", "--data", str(data), "--out", str(run), "--resume", "--kimg", "0.016", "--quiet"])
    assert "trained to 0.016 kimg" in out
    # A fine-tune from the run's network: D alone first, images of two presets shown twice per epoch.
    ft = tmp_path / "ft"
    out = _run(["train", "generator", "--data", str(data), "--out", str(ft), "--config", "tiny", "--kimg", "0.008",
                "--init", str(run / "network-latest.safetensors"), "--g-freeze-kimg", "0.004",
                "--preset-repeat", "blink=2,smile=2", "--quiet"])
    assert "trained to 0.008 kimg" in out
    import json

    saved = json.loads((ft / "config.json").read_text())
    assert saved["g_freeze_kimg"] == 0.004 and saved["preset_repeat"] == [["blink", 2], ["smile", 2]]
    out = _run(["train", "generator", "--data", str(data), "--out", str(ft), "--resume", "--kimg", "0.012", "--quiet"])
    assert "trained to 0.012 kimg" in out  # the resumed run rebuilds its repeated dataset from its own config
    refused = CliRunner().invoke(main, ["train", "generator", "--data", str(data), "--out", str(ft), "--resume",
                                        "--preset-repeat", "blink=3"])
    assert refused.exit_code == 2 and "new run" in refused.output
    refused = CliRunner().invoke(main, ["train", "generator", "--data", str(data), "--out", str(tmp_path / "ft2"),
                                        "--config", "tiny", "--preset-repeat", "grin=2"])
    assert refused.exit_code != 0 and "'grin'" in refused.output
    out = _run(["train", "encoder", "--data", str(data), "--out", str(enc), "--steps", "5", "--batch", "8",
                "--holdout", "8", "--widths", "8,16", "--spatial-head", "16", "--quiet"])
    assert "landmarks:" in out and enc.is_file()
    from rig.instruments.encoder import load_encoder

    assert load_encoder(enc).cfg.widths == (8, 16) and load_encoder(enc).cfg.spatial_head == 16
    # A fine-tune with a reading critic on that encoder; the resumed run loads the encoder again.
    rd = tmp_path / "reader-run"
    _run(["train", "generator", "--data", str(data), "--out", str(rd), "--config", "tiny", "--kimg", "0.008",
          "--init", str(run / "network-latest.safetensors"), "--reader", str(enc), "--reader-weight", "0.5", "--reader-r1-gamma", "0.1", "--quiet"])
    saved = json.loads((rd / "config.json").read_text())
    assert (saved["reader"], saved["reader_weight"], saved["reader_r1_gamma"]) == (str(enc), 0.5, 0.1)
    assert "trained to 0.012 kimg" in _run(["train", "generator", "--data", str(data), "--out", str(rd), "--resume",
                                            "--kimg", "0.012", "--quiet"])
    refused = CliRunner().invoke(main, ["train", "generator", "--data", str(data), "--out", str(rd), "--resume",
                                        "--reader", str(enc)])
    assert refused.exit_code == 2 and "new run" in refused.output
    refused = CliRunner().invoke(main, ["train", "generator", "--data", str(data), "--out", str(tmp_path / "rd2"),
                                        "--config", "tiny", "--reader", str(tmp_path / "missing.safetensors")])
    assert refused.exit_code != 0 and "missing.safetensors" in refused.output
    out = _run(["eval", "generator", "--network", str(run / "network-latest.safetensors"), "--data", str(data),
                "--encoder", str(enc), "--n", "8", "--quiet"])
    frd, floor = map(float, re.search(r"FRD\(generated, world\) = ([\d.]+)\s+floor FRD\(world, world\) = ([\d.]+)", out).groups())
    assert frd >= 0 and floor >= 0
    assert re.search(r"plausible faces: [\d.]+ %", out) and "std yaw" in out
    assert re.search(r"named expressions \(11, .*\n  anger +[\d.]+ / [\d.]+", out)
    # The run's raw G is another generator than its G_ema (same floor: the world sets are the same).
    assert "FRD(generated, world)" in _run(["eval", "generator", "--network", str(run / "network-latest.safetensors"),
                                            "--data", str(data), "--encoder", str(enc), "--n", "8", "--which", "G", "--quiet"])
    from rig.world.encoder_run import eval_generator_on_world

    ema, raw = (eval_generator_on_world(run / "network-latest.safetensors", data, enc, 8, progress=False, which=w)
                for w in ("G_ema", "G"))
    assert raw.frd_floor == ema.frd_floor and raw.frd != ema.frd
    # A class-conditional fine-tune with an eyes critic, lifted from the unconditional run.
    cond = tmp_path / "cond-run"
    _run(["train", "generator", "--data", str(data), "--out", str(cond), "--config", "tiny", "--kimg", "0.008",
          "--init", str(run / "network-latest.safetensors"), "--cond", "preset", "--local-d", "eyes",
          "--g-freeze-kimg", "0.004", "--quiet"])
    from rig.world.dataset import WorldDataset

    ds = WorldDataset(data, keys=[])
    counts = np.bincount(ds.params["preset"] + 1, minlength=12)
    saved = json.loads((cond / "config.json").read_text())
    assert saved["class_names"] == ["none", *ds.info["preset_names"]]
    np.testing.assert_allclose(saved["class_prior"], counts / counts.sum())
    assert saved["local_critics"][0]["name"] == "eyes"
    assert "trained to 0.012 kimg" in _run(["train", "generator", "--data", str(data), "--out", str(cond), "--resume",
                                            "--kimg", "0.012", "--quiet"])
    refused = CliRunner().invoke(main, ["train", "generator", "--data", str(data), "--out", str(cond), "--resume",
                                        "--cond", "preset"])
    assert refused.exit_code == 2 and "new run" in refused.output
    _run(["generate", "--network", str(cond / "network-latest.safetensors"), "--seeds", "0-1", "--outdir", str(tmp_path / "cg")])
    assert (tmp_path / "cg" / "seed0001.png").is_file()  # labels drawn per seed: no --class needed
    out = _run(["eval", "generator", "--network", str(cond / "network-latest.safetensors"), "--data", str(data),
                "--encoder", str(enc), "--n", "8", "--quiet"])
    assert "labels of the conditional generator" in out
    # Refined labels ('none' split by eyes and jaw) with a matching-aware D, from the conditional run; resumable.
    state = tmp_path / "state-run"
    _run(["train", "generator", "--data", str(data), "--out", str(state), "--config", "tiny", "--kimg", "0.004",
          "--init", str(cond / "network-latest.safetensors"), "--cond", "preset+state", "--label-mismatch", "1", "--quiet"])
    saved = json.loads((state / "config.json").read_text())
    assert saved["class_names"][:2] == ["none", "none+eyes_closed"] and len(saved["class_names"]) == 8 + 11
    assert saved["label_mismatch"] == 1.0
    assert "trained to 0.008 kimg" in _run(["train", "generator", "--data", str(data), "--out", str(state), "--resume",
                                            "--kimg", "0.008", "--quiet"])
    out = _run(["eval", "generator", "--network", str(state / "network-latest.safetensors"), "--data", str(data),
                "--encoder", str(enc), "--n", "8", "--quiet"])
    assert re.search(r"labels of the conditional generator: .*: [a-z_]+ [\d.]+ / [\d.]+", out)  # presets found by name
    refused = CliRunner().invoke(main, ["eval", "generator", "--network", "default", "--which", "G", "--n", "4", "--quiet"])
    assert refused.exit_code != 0 and "holds no G network" in refused.output  # the default ships G_ema alone


def test_train_encoder_refuses_bad_widths(tmp_path):
    result = CliRunner().invoke(main, ["train", "encoder", "--data", str(tmp_path), "--out", str(tmp_path / "e.safetensors"),
                                       "--widths", "32,x"])
    assert result.exit_code == 2 and "--widths" in result.output
