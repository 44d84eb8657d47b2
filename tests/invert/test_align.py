"""``rig align``: the FFHQ crop from dlib's landmarks, the saved transform, paste-back, and the photo checks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib")


def _eyes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return landmarks[36:42].mean(0), landmarks[42:48].mean(0)


def test_crop_puts_the_eyes_where_ffhq_does(astronaut):
    """Read the crop back with dlib (an independent detection on the output): the eyes are level,
    centred, and as far apart as the recipe's half-side rule allows."""
    from rig.invert.align import align_photo, detect_faces

    crop, al, notices = align_photo(astronaut, 256)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8 and notices == []
    assert al.n_faces == 1 and al.photo_size == [512, 512]
    faces = detect_faces(crop)
    assert len(faces) == 1
    left, right = _eyes(faces[0].landmarks)
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    assert abs(angle) < 3
    mid = (left + right) / 2
    assert abs(mid[0] / 256 - 0.5) < 0.03
    # half-side = max(2 eye-to-eye, 1.8 eye-to-mouth): the eyes are at most a quarter of the side apart.
    assert 0.15 < np.linalg.norm(right - left) / 256 <= 0.26
    # The eye line sits above the centre (the centre is 10 % of eye-to-mouth below the eyes).
    assert 0.3 < mid[1] / 256 < 0.5


def test_alignment_round_trip_and_paste_back(astronaut, tmp_path):
    from rig.invert.align import align_photo, load_alignment, paste_back, save_alignment

    crop, al, _ = align_photo(astronaut, 256)
    save_alignment(tmp_path / "a.json", al)
    back = load_alignment(tmp_path / "a.json")
    assert back == al
    # Pasting the crop itself back reproduces the photo up to two resamplings.
    out = paste_back(astronaut, crop, back)
    diff = np.abs(out.astype(int) - astronaut).max(2)
    assert diff.mean() < 1.0 and np.percentile(diff, 99.9) < 25
    # A black crop pasted back darkens the face region only: the photo's corners stay as they were.
    dark = paste_back(astronaut, np.zeros_like(crop), back)
    c = np.round(back.centre).astype(int)
    assert dark[c[1], c[0]].max() == 0
    assert np.array_equal(dark[:40, :40], astronaut[:40, :40]) and np.array_equal(dark[-40:, -40:], astronaut[-40:, -40:])


def test_several_faces_take_the_largest_and_index_chooses(astronaut):
    from PIL import Image

    from rig.errors import InputError
    from rig.invert.align import align_photo

    two = np.full((512, 768, 3), 90, np.uint8)
    two[:, :512] = astronaut
    two[128:384, 512:] = np.asarray(Image.fromarray(astronaut).resize((256, 256)))
    _, al, notices = align_photo(two, 64)
    assert al.n_faces == 2 and al.face_index == 0 and al.box[2] < 512
    assert len(notices) == 1 and "2 faces found; took face 0" in notices[0] and "--face-index" in notices[0]
    _, al1, notices1 = align_photo(two, 64, face_index=1)
    assert al1.box[0] > 512 and notices1 == []
    with pytest.raises(InputError, match="--face-index 2, but 2 face"):
        align_photo(two, 64, face_index=2)


def test_tiny_and_missing_faces_are_refused(astronaut):
    from PIL import Image

    from rig.errors import InputError
    from rig.invert.align import align_photo

    canvas = np.full((160, 160, 3), 128, np.uint8)
    canvas[:90, :90] = np.asarray(Image.fromarray(astronaut).resize((90, 90)))
    with pytest.raises(InputError, match="too small"):
        align_photo(canvas, 64, source="tiny.png")
    flat = np.tile(np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], (200, 1, 3))
    with pytest.raises(InputError, match="flat.png: no face found"):
        align_photo(np.ascontiguousarray(flat), 64, source="flat.png")


def test_read_photo_refuses_what_is_not_an_image(tmp_path):
    from rig.errors import InputError
    from rig.invert.align import read_photo

    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="notes.png: not a readable image"):
        read_photo(bad)
    with pytest.raises(InputError, match="missing.png: file not found"):
        read_photo(tmp_path / "missing.png")


def test_crop_is_told_from_photo(astronaut):
    """A square at the generator's size is a crop; a larger aligned square is recognised by its landmarks;
    the astronaut photo (face off-centre, small) is not a crop."""
    from rig.invert.align import align_photo, crop_fit
    from rig.invert.pipeline import CROP_FIT, InvertConfig, target_crop

    crop256, _, _ = align_photo(astronaut, 256)
    assert crop_fit(crop256) < CROP_FIT < crop_fit(astronaut)
    cfg = InvertConfig()
    img, al, notes = target_crop(crop256, 64, cfg, "c.png")
    assert img.shape == (64, 64, 3) and al is None and "taken as a crop" in notes[0]
    img, al, _ = target_crop(astronaut, 64, cfg, "a.png")
    assert img.shape == (64, 64, 3) and al is not None
    small = np.ascontiguousarray(crop256[::4, ::4])
    img, al, notes = target_crop(small, 64, cfg, "s.png")
    assert al is None and "the generator's size" in notes[0]
