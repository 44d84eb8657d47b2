"""The face follower: rectified crops, shape checks, re-detection and flagged frames on real-photo clips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rig.track.landmarks import DlibLandmarkDetector
from rig.track.sequence import (SOURCE_CROP_DETECT, SOURCE_FULL_DETECT, SOURCE_NONE, SOURCE_TRACKED, FollowConfig,
                                RectifiedCrop,
                                follow_face, procrustes_residual, similarity_from_landmarks)
from rig.track.synthetic import SimilarityTrajectory, astronaut_photo, render_clip, roll_swing, ASTRONAUT_FACE_CENTRE


@pytest.fixture(scope="module")
def detector() -> DlibLandmarkDetector:
    return DlibLandmarkDetector()


@pytest.fixture(scope="module")
def photo_landmarks(detector) -> np.ndarray:
    return detector.detect(astronaut_photo())[0].landmarks


def test_rectified_crop_maps_points_and_pixels_consistently():
    rng = np.random.default_rng(0)
    crop = RectifiedCrop(np.array([150.3, 90.7]), 31.0, math.radians(17.0), FollowConfig())
    pts = rng.uniform(0, 300, (20, 2))
    np.testing.assert_allclose(crop.to_frame(crop.to_crop(pts)), pts, atol=1e-9)
    # A single bright pixel lands where to_crop says (centre convention on both sides).
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[100, 160] = 255  # pixel centre (160.5, 100.5)
    image = crop.warp(frame).astype(float)[..., 0]
    ys, xs = np.nonzero(image)
    w = image[ys, xs]
    found = np.array([(xs * w).sum() / w.sum() + 0.5, (ys * w).sum() / w.sum() + 0.5])
    np.testing.assert_allclose(found, crop.to_crop(np.array([[160.5, 100.5]]))[0], atol=0.35)


def test_similarity_reads_roll_scale_and_centre(photo_landmarks):
    centre, radius, roll = similarity_from_landmarks(photo_landmarks)
    a = math.radians(25.0)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = 1.5 * (photo_landmarks - centre) @ R.T + np.array([10.0, -4.0]) + centre
    c2, r2, roll2 = similarity_from_landmarks(moved)
    np.testing.assert_allclose(c2, centre + np.array([10.0, -4.0]), atol=1e-9)
    assert r2 == pytest.approx(1.5 * radius)
    assert math.degrees(roll2 - roll) == pytest.approx(25.0)
    # Procrustes: zero for a similarity copy, > 0 for a distorted one, scale invariant.
    assert procrustes_residual(moved, photo_landmarks) < 1e-9
    squashed = photo_landmarks * np.array([1.0, 0.6])
    assert procrustes_residual(squashed, photo_landmarks) > 0.1
    assert procrustes_residual(3 * squashed, photo_landmarks) == pytest.approx(procrustes_residual(squashed, photo_landmarks))


def test_follower_tracks_roll_clip_every_frame(detector, photo_landmarks):
    traj = roll_swing(30, math.radians(20), static_frames=6, width=320, height=320)
    clip = render_clip(astronaut_photo(), traj)
    track = follow_face(clip, detector)
    assert track.detected.all()
    assert track.source[0] == SOURCE_FULL_DETECT
    # With the default detect_every=2 the detector confirms every other frame; the rest are tracked.
    assert np.all(np.isin(track.source[1:], [SOURCE_CROP_DETECT, SOURCE_TRACKED]))
    assert (track.source == SOURCE_CROP_DETECT).sum() >= 14
    truth = traj.apply(photo_landmarks)
    err = np.sqrt(((track.landmarks - truth) ** 2).sum(-1))
    assert err.mean() < 1.5, f"mean landmark error {err.mean():.2f} px"
    roll = np.array([similarity_from_landmarks(l)[2] for l in track.landmarks])
    roll_true = np.array([similarity_from_landmarks(l)[2] for l in truth])
    assert np.degrees(np.abs(roll - roll_true)).max() < 2.0


def test_blank_frames_are_flagged_and_face_is_found_again(detector, photo_landmarks):
    traj = SimilarityTrajectory(np.zeros(12), np.ones(12), np.zeros((12, 2)), ASTRONAUT_FACE_CENTRE, 320, 320)
    clip = render_clip(astronaut_photo(), traj)
    clip[4:7] = 90  # three frames of grey: the face is gone
    # Jump the face 40 px after the gap: tracking from old landmarks would start in the wrong place.
    traj2 = SimilarityTrajectory(np.zeros(5), np.ones(5), np.tile([40.0, 10.0], (5, 1)), ASTRONAUT_FACE_CENTRE, 320, 320)
    clip[7:] = render_clip(astronaut_photo(), traj2)[:5]
    track = follow_face(clip, detector)
    np.testing.assert_array_equal(track.detected, [True] * 4 + [False] * 3 + [True] * 5)
    assert np.all(np.isnan(track.landmarks[4:7])) and np.all(track.source[4:7] == SOURCE_NONE)
    expected = photo_landmarks - np.array(ASTRONAUT_FACE_CENTRE) + np.array([160.0 + 40.0, 160.0 + 10.0])
    err = np.sqrt(((track.landmarks[7:] - expected) ** 2).sum(-1)).mean()
    assert err < 1.5


def test_detecting_every_frame_confirms_every_frame(detector):
    traj = roll_swing(8, math.radians(10), width=320, height=320)
    track = follow_face(render_clip(astronaut_photo(), traj), detector, FollowConfig(detect_every=1))
    assert np.all(track.source[1:] == SOURCE_CROP_DETECT)


def test_faceless_clip_gives_no_detections(detector):
    clip = np.random.default_rng(0).integers(0, 255, (4, 120, 160, 3), dtype=np.uint8)
    track = follow_face(clip, detector)
    assert not track.detected.any() and np.isnan(track.landmarks).all()


def test_small_face_found_by_upsampling_and_followed(detector, photo_landmarks):
    # Face box ~45 px: below dlib's 80 px HOG window, found only in the upsampled search; the
    # rectified crop then enlarges it for every later frame.
    traj = SimilarityTrajectory(np.zeros(6), np.full(6, 0.5), np.zeros((6, 2)), ASTRONAUT_FACE_CENTRE, 200, 160)
    clip = render_clip(astronaut_photo(), traj)
    assert detector.detect(clip[0]) == []
    track = follow_face(clip, detector)
    assert track.detected.all()
    truth = traj.apply(photo_landmarks)
    assert np.sqrt(((track.landmarks - truth) ** 2).sum(-1)).mean() < 1.5


def test_fast_motion_is_followed_by_redetection(detector, photo_landmarks):
    # The face jumps up to 90 px between frames (beyond what tracking from the previous landmarks
    # survives): every frame must still be found, at the right place.
    jumps = np.array([[0, 0], [60, 0], [-30, 40], [90, -20], [-80, -30], [20, 50], [-60, 10], [0, 0]], float)
    T = len(jumps)
    traj = SimilarityTrajectory(np.zeros(T), np.ones(T), jumps, ASTRONAUT_FACE_CENTRE, 480, 400)
    clip = render_clip(astronaut_photo(), traj)
    track = follow_face(clip, detector)
    assert track.detected.all()
    err = np.sqrt(((track.landmarks - traj.apply(photo_landmarks)) ** 2).sum(-1)).mean(-1)
    assert err.max() < 2.0, err
