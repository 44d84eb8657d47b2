"""Inversion: the image terms against independent references, the inverter and the optimisation on a
tiny generator, pivotal tuning leaving the original alone, the face file's tuned-generator rule, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner


def test_psnr_matches_its_definition():
    from rig.invert.losses import psnr

    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    mse = (((a + 1) / 2 - (b + 1) / 2) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(a, b), -10 * torch.log10(mse), atol=1e-4)


def test_single_scale_ms_ssim_is_skimage_ssim():
    """At one scale our SSIM is skimage's Gaussian-window SSIM (sigma 1.5, population statistics)."""
    metrics = pytest.importorskip("skimage.metrics")
    from rig.invert.losses import ms_ssim

    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    ours = ms_ssim(a, b, scales=1).item()
    x, y = ((a[0] + 1) / 2).permute(1, 2, 0).double().numpy(), ((b[0] + 1) / 2).permute(1, 2, 0).double().numpy()
    ref = metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, channel_axis=2)
    assert abs(ours - ref) < 2e-3
    assert ms_ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    assert ms_ssim(a, b).item() < 0.9


def test_inverter_training_lowers_its_losses(tiny_inverter):
    path, log = tiny_inverter
    latent = [r["latent"] for r in log if r["phase"] == "latent"]
    assert latent[-1] < 0.8 * latent[0]
    assert any(r["phase"] == "image" and "pixel" in r for r in log)
    from rig.invert.inverter import load_inverter

    bundle = load_inverter(path)
    assert bundle.meta["training"]["config"]["latent_steps"] == 150


def test_inverter_is_refused_on_another_generator(tiny_inverter):
    from rig.errors import InputError
    from rig.invert.inverter import load_inverter
    from rig.stylegan2.checkpoints import load_generator

    bundle = load_inverter(tiny_inverter[0])
    with pytest.raises(InputError, match="belongs to another generator"):
        bundle.check_generator(load_generator("default"))


def _samples(G, n=4, seed=3):
    from rig.invert.inverter_train import sample_pairs

    return sample_pairs(G, n, torch.Generator().manual_seed(seed), mix_prob=0.0)


def test_optimisation_from_the_inverter_reduces_the_loss(tiny_generator_file, tiny_inverter):
    from rig.invert.inverter import load_inverter
    from rig.invert.losses import EncoderTerms, psnr
    from rig.invert.optimize import OptimizeConfig, optimize_latents
    from rig.stylegan2.checkpoints import load_generator

    G = load_generator(tiny_generator_file)
    net = load_inverter(tiny_inverter[0]).net
    images, ws_true = _samples(G)
    with torch.no_grad():
        ws0 = net(images)
        p0 = psnr(G.synthesis(ws0, noise_mode="const"), images)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    ws, hist = optimize_latents(G, EncoderTerms(), images, ws0, net.w_mean, net.w_std, OptimizeConfig(steps=60, lr=0.1))
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    with torch.no_grad():
        p1 = psnr(G.synthesis(ws, noise_mode="const"), images)
    assert p1.mean() > p0.mean() + 2
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())


def test_tuned_copy_leaves_the_original_untouched(tiny_generator_file, tmp_path):
    from rig.invert.losses import EncoderTerms, psnr
    from rig.invert.tune import TuneConfig, save_tuned_generator, tune_generator
    from rig.stylegan2.checkpoints import load_generator
    from rig.stylegan2.identity import generator_identity

    G = load_generator(tiny_generator_file)
    ident = generator_identity(G)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    images, _ = _samples(G, n=1, seed=5)
    target = torch.flip(images, dims=[3])  # a target the pivot does not draw yet
    pivot = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(9)), None)
    with torch.no_grad():
        p0 = psnr(G.synthesis(pivot, noise_mode="const"), target).item()
    tuned, hist = tune_generator(G, EncoderTerms(), target, pivot, TuneConfig(steps=40, lr=3e-3))
    with torch.no_grad():
        p1 = psnr(tuned.synthesis(pivot, noise_mode="const"), target).item()
    assert p1 > p0 + 3 and hist[-1]["loss"] < hist[0]["loss"]
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert generator_identity(G) == ident and tuned.parent_identity == ident
    assert generator_identity(tuned) != ident
    save_tuned_generator(tmp_path / "t.safetensors", tuned)
    back = load_generator(tmp_path / "t.safetensors")
    assert back.parent_identity == ident and generator_identity(back) == generator_identity(tuned)


def test_face_file_names_its_tuned_generator_only_beside_itself(tmp_path):
    from rig.errors import InputError
    from rig.rignet.face import Face, load_face, tuned_generator_path

    ws = torch.zeros(6, 16)
    face = Face(ws, "0123456789abcdef", {"made_by": "test"}, tuned_generator="me.generator.safetensors",
                tuned_identity="fedcba9876543210", alignment={"centre": [1, 2]})
    face.save(tmp_path / "me.npz")
    back = load_face(tmp_path / "me.npz", 6, 16)
    assert back.tuned_generator == "me.generator.safetensors" and back.alignment == {"centre": [1, 2]}
    assert tuned_generator_path(back, tmp_path / "me.npz") == (tmp_path / "me.generator.safetensors").resolve()
    for bad in ("../x.safetensors", "/etc/passwd", "sub/x.safetensors", "x.pkl"):
        with pytest.raises(InputError, match="refused"):
            Face(ws, "0123456789abcdef", {}, tuned_generator=bad).save(tmp_path / "bad.npz")
        # a hand-made file naming it is refused at load too
        arrays = dict(np.load(tmp_path / "me.npz", allow_pickle=False))
        arrays["tuned_generator"] = np.array(bad)
        np.savez(tmp_path / "crafted.npz", **arrays)
        with pytest.raises(InputError, match="refused"):
            load_face(tmp_path / "crafted.npz", 6, 16)


def _crop_of_tiny(G, tmp_path):
    from PIL import Image

    from rig.stylegan2.generate import to_uint8_nhwc

    images, _ = _samples(G, n=1, seed=11)
    path = tmp_path / "crop.png"
    Image.fromarray(to_uint8_nhwc(images)[0]).save(path)
    return path


def test_invert_cli_with_tuning_then_open_face(tiny_generator_file, tiny_inverter, tmp_path):
    from rig.cli import main
    from rig.rignet.editor import Editor
    from rig.stylegan2.checkpoints import load_generator
    from rig.stylegan2.identity import generator_identity

    G = load_generator(tiny_generator_file)
    crop = _crop_of_tiny(G, tmp_path)
    out = tmp_path / "faces" / "me.npz"
    r = CliRunner().invoke(main, ["invert", str(crop), "-o", str(out), "--network", str(tiny_generator_file),
                                  "--inverter", str(tiny_inverter[0]), "--rignet", "none", "--steps", "10",
                                  "--tune", "5", "--quiet", "--save-image", str(tmp_path / "stages.png")])
    assert r.exit_code == 0, r.output
    assert "taken as an aligned crop" in r.output and "PSNR against the target" in r.output
    tuned_file = out.parent / "me.generator.safetensors"
    assert out.is_file() and tuned_file.is_file() and (tmp_path / "stages.png").is_file()
    with np.load(out, allow_pickle=False) as z:
        prov = json.loads(str(z["provenance"]))
        assert str(z["tuned_generator"]) == "me.generator.safetensors"
        assert str(z["generator_identity"]) == generator_identity(G)
    assert prov["made_by"] == "rig invert" and prov["steps"] == 10 and prov["tune_steps"] == 5
    assert prov["psnr_optimised"] >= prov["psnr_inverter"] - 0.5
    ed = Editor.load(str(tiny_generator_file), rignet=None)
    ed.open_face(out)
    assert ed.G.parent_identity == generator_identity(G)
    assert any("tuned generator" in n for n in ed.notices)
    # Without its generator beside it, the face is refused rather than drawn by the untuned one.
    tuned_file.rename(tmp_path / "elsewhere.safetensors")
    from rig.errors import InputError

    with pytest.raises(InputError, match="missing beside it"):
        Editor.load(str(tiny_generator_file), rignet=None).open_face(out)


@pytest.mark.parametrize("case", ["not_image", "no_face", "bad_suffix", "paste_back_of_crop"])
def test_invert_cli_bad_inputs(case, tiny_generator_file, tiny_inverter, tmp_path):
    from PIL import Image

    from rig.cli import main
    from rig.stylegan2.checkpoints import load_generator

    out = tmp_path / "out" / "face.npz"
    args = ["--network", str(tiny_generator_file), "--inverter", str(tiny_inverter[0]), "--rignet", "none",
            "--steps", "2", "--quiet"]
    if case == "not_image":
        src = tmp_path / "clip.png"
        src.write_bytes(b"\x00\x01garbage")
        want = "not a readable image"
    elif case == "no_face":
        pytest.importorskip("dlib")
        src = tmp_path / "flat.png"
        Image.fromarray(np.full((120, 200, 3), 200, np.uint8)).save(src)
        want = "no face found"
    elif case == "bad_suffix":
        src = _crop_of_tiny(load_generator(tiny_generator_file), tmp_path)
        out = tmp_path / "out" / "face.png"
        want = "must end in .npz"
    else:
        src = _crop_of_tiny(load_generator(tiny_generator_file), tmp_path)
        args += ["--paste-back", str(tmp_path / "out" / "pasted.png")]
        want = "--paste-back needs a photo"
    r = CliRunner().invoke(main, ["invert", str(src), "-o", str(out), *args])
    assert r.exit_code == 1, r.output
    lines = [l for l in r.output.splitlines() if l.startswith("rig: error")]
    assert len(lines) == 1 and want in lines[0]
    if case in ("not_image", "no_face"):
        assert src.name in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_landmark_distance_between_readings_is_in_percent_of_the_true_iod():
    from rig.invert.evaluate import _nme_against

    true = np.zeros((1, 68, 2))
    true[0, 36], true[0, 45] = (10.0, 20.0), (30.0, 20.0)  # IOD 20 px
    ref = np.random.default_rng(0).normal(size=(1, 68, 2)) * 5
    pred = ref + np.array([3.0, 4.0])  # every point 5 px away from the reference reading
    assert _nme_against(pred, ref, true) == pytest.approx([25.0])


def test_shift_images_moves_content_by_whole_pixels():
    from rig.invert.evaluate import shift_images

    img = np.zeros((1, 8, 8, 3), np.uint8)
    img[0, 3, 2] = 255  # row (y) 3, column (x) 2
    moved = shift_images(img, 2, -1)
    assert moved.shape == img.shape and moved.flags["C_CONTIGUOUS"]
    assert np.argwhere(moved[0, :, :, 0] == 255).tolist() == [[2, 4]]


def test_inverter_training_resumes_to_the_same_result(tiny_generator_file, tiny_world, tmp_path):
    """Interrupted in the image phase (world renders mixed in) and resumed from its snapshot, a run
    ends with the same weights as the run that was never stopped."""
    import rig.invert.inverter_train as it
    import rig.io.run_log as run_log
    from rig.errors import InputError
    from rig.invert.inverter import load_inverter

    cfg = it.InverterTrainConfig(latent_steps=30, image_steps=30, batch=8, world_batch=4, lr=2e-3, snapshot_s=0.0)
    a = load_inverter(it.train_inverter(str(tiny_generator_file), tmp_path / "a", cfg, world_dir=tiny_world,
                                        progress=False)).net
    real = run_log.append_log_line

    def stop_in_image_phase(path, record):
        real(path, record)
        if record["phase"] == "image" and record["step"] >= 25:
            raise KeyboardInterrupt

    run_log.append_log_line = stop_in_image_phase
    try:
        with pytest.raises(KeyboardInterrupt):
            it.train_inverter(str(tiny_generator_file), tmp_path / "b", cfg, world_dir=tiny_world, progress=False)
    finally:
        run_log.append_log_line = real
    assert not (tmp_path / "b" / "inverter.safetensors").exists()
    stopped = torch.load(tmp_path / "b" / "snapshot.pt", weights_only=True)["net"]
    assert stopped and any(k in stopped for k in a.state_dict())
    with pytest.raises(InputError, match="not empty"):
        it.train_inverter(str(tiny_generator_file), tmp_path / "b", cfg, world_dir=tiny_world, progress=False)
    other = dataclasses.replace(cfg, lr=1e-3)
    with pytest.raises(InputError, match="other settings"):
        it.train_inverter(str(tiny_generator_file), tmp_path / "b", other, world_dir=tiny_world, resume=True,
                          progress=False)
    b = load_inverter(it.train_inverter(str(tiny_generator_file), tmp_path / "b", cfg, world_dir=tiny_world,
                                        resume=True, progress=False)).net
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        assert torch.allclose(sb[k], v, atol=1e-5), k
    # Not vacuous: the weights at the interruption differ from the final ones.
    moved = max((stopped[k].float() - v.float()).abs().max().item() for k, v in sa.items() if k in stopped)
    assert moved > 1e-4
