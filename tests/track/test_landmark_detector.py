"""dlib landmark backend: finds the astronaut's face, guards against dlib's input traps."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import ShapeError
from rig.track.landmarks import DlibLandmarkDetector, LandmarkDetector, face_recognition_models_dir
from rig.track.sequence import similarity_from_landmarks
from rig.track.synthetic import ASTRONAUT_FACE_CENTRE, astronaut_photo


@pytest.fixture(scope="module")
def detector() -> DlibLandmarkDetector:
    return DlibLandmarkDetector()


def test_models_folder_found_without_importing_package():
    folder = face_recognition_models_dir()
    assert (folder / "shape_predictor_68_face_landmarks.dat").is_file()


def test_detects_astronaut_face_with_landmarks_in_ibug_order(detector):
    assert isinstance(detector, LandmarkDetector)
    found = detector.detect(astronaut_photo())
    assert found, "no face found in skimage's astronaut photo"
    best = found[0]
    assert best.score > 1.0
    assert all(found[i].score >= found[i + 1].score for i in range(len(found) - 1))
    lmk = best.landmarks
    assert lmk.shape == (68, 2) and lmk.dtype == np.float64
    centre, radius, roll = similarity_from_landmarks(lmk)
    np.testing.assert_allclose(centre, ASTRONAUT_FACE_CENTRE, atol=4.0)
    assert 25 < radius < 50 and abs(np.degrees(roll)) < 10
    # iBUG order: jaw 0..16 below the eyes 36..47, nose tip 30 between eyes and mouth 48..67.
    assert lmk[8, 1] > lmk[57, 1] > lmk[30, 1] > lmk[36:48, 1].mean() > lmk[17:27, 1].mean()
    assert lmk[36, 0] < lmk[39, 0] < lmk[42, 0] < lmk[45, 0]
    # The box holds the inner face.
    left, top, right, bottom = best.box
    assert left < lmk[36, 0] and right > lmk[45, 0] and top < lmk[36, 1] and bottom > lmk[57, 1]


def test_flipped_view_is_made_contiguous_not_silently_empty(detector):
    photo = astronaut_photo()
    mirrored_view = photo[:, ::-1]  # a negative-stride view: dlib alone finds nothing in it
    assert not mirrored_view.flags.c_contiguous
    found = detector.detect(mirrored_view)
    assert found and found[0].score > 1.0
    direct = detector.detect(photo)[0].landmarks
    # The mirrored face's centre mirrors the original's (pixel-centre convention: u -> W - u).
    np.testing.assert_allclose(found[0].landmarks.mean(0)[0], 512 - direct.mean(0)[0], atol=3.0)


def test_landmarks_in_box_matches_detection(detector):
    photo = astronaut_photo()
    best = detector.detect(photo)[0]
    again = detector.landmarks_in_box(photo, best.box)
    np.testing.assert_allclose(again, best.landmarks, atol=1e-9)


@pytest.mark.parametrize("bad", [np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8),
                                 np.zeros((32, 32, 4), np.uint8)])
def test_rejects_non_rgb_uint8_frames(detector, bad):
    with pytest.raises(ShapeError):
        detector.detect(bad)


def test_blank_frame_has_no_face(detector):
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
