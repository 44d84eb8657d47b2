"""The independent instrument: dlib's 68 landmarks and 128-D descriptor, and a model fit, per face image.

rig's own encoder (``rig.instruments.encoder``) was trained on world renders, so judging generated
faces by it alone grades the generator with the teacher's own yardstick. This reader shares none of
its training: dlib's HOG detector, its 68-point shape predictor (iBUG 300-W, not for commercial
use) and its face-recognition ResNet read the image, and rig's tracker fit
(``rig.track.fit.fit_landmarks``) turns the 68 points into head angles and a jaw opening.

Per image (N, S, S, 3) uint8 RGB, any square size (64 px typical):
1. upsample bicubic to ``upsample_to`` px (dlib's HOG window is 80 px: a 64 px face is too small);
2. HOG detection at ``score_threshold``; with ``aligned`` only boxes where an FFHQ-aligned crop puts
   the face count, and the highest-scoring of them is taken;
3. the 68 landmarks in that box (reported in input pixels, centre convention of ``rig.track``);
4. the 128-D descriptor of ``dlib_face_recognition_resnet_model_v1`` on the upsampled image;
5. the face model fitted to the 68 points alone (one T=1 fit per image, so images never influence
   each other), a perspective camera of the default world's focal length; yaw / pitch / roll of
   R_root @ R_neck (``rig.face_model.params.euler_to_axis_angle`` conventions: R = R_y(yaw)
   R_x(pitch) R_z(roll), +yaw turns the face to the subject's left, +pitch tips it down), which
   is the head's rotation relative to the camera of the crop; jaw = the fitted jaw_pose x rotation
   (+ opens). Angles are reported in degrees.

Fit settings and why (measured on the 200 images of ``calibrate_on_world``): no expression
coefficients (with 50, a single image's mouth opening goes to the expression blendshapes instead
of the jaw: jaw correlation 0.41 instead of 0.65; yaw and pitch unchanged); the focal length fixed
at ``DEFAULT_FOCAL_PER_SIDE`` x S (the median of the world crops', 246-404 px at 64 px; halving or
doubling it moves the yaw slope by 0.01, and letting the fitter estimate it drifts to ~66 px).
Fitting the world's *true* projected landmarks with the same settings reads yaw / pitch / roll of
the crop camera with slopes 1.08 / 1.08 / 1.06 (correlations 0.997 / 0.959 / 0.981): what is lost
below is lost in dlib's landmarks at 64 px, not in the fit.

The floor on the default world (``calibrate_on_world(200, seed=0)``, 64 px renders with known
parameters; slope = least-squares slope of reading on truth, truth = ``head_ypr`` / ``jaw_pose``)::

    reading                      slope   corr   median |error|
    yaw   vs head_ypr            0.88    0.94   3.3 deg
    pitch vs head_ypr            0.61    0.80   5.6 deg
    jaw   vs jaw_pose x          0.55    0.65   2.2 deg
    yaw   vs the crop's truth    0.87    0.94   2.9 deg
    pitch vs the crop's truth    0.65    0.83   4.4 deg
    roll  vs the crop's truth    0.49    0.64   1.3 deg
    found 187 of 200 (0.935); descriptor distance of consecutive (different) faces: median 0.53

The yaw errors have a tail: on 9 of the 187 faces (7 of them at |yaw| > 20 deg) dlib's predictor
lays a near-frontal shape over the turned face and the reading falls 15-29 deg short; the HOG score
does not flag them. Pitch and jaw are weak readings of dlib's 64 px landmarks (slopes well below 1):
compare them between images read alike, not with requested angles.

``roll`` is not comparable with ``head_ypr``'s roll: the FFHQ alignment turns the crop until the
eyes are level, so the crop camera's roll (``crop_*`` rows: the truth rotated into the crop by
``head_angles_in_crop``) is what a reader of the crop can see. Detection: at dlib's usual threshold
0 HOG finds only 0.735 of these renders (hard cases: dark skin, strong pitch, |yaw| > 30 deg);
the default -0.8 with the aligned-box gate finds 0.935, and the gate keeps it from firing on
the world's backgrounds (0 of 400 background-only images at -0.8; ungated, 11 of 40 "noise"
backgrounds fire). Speed: 120 ms/image on one core (detection 8, descriptor 73, fit
55); ``descriptors=False`` skips the descriptor.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.errors import InputError, ShapeError

N_LANDMARKS = 68
DESCRIPTOR_DIM = 128
# Focal length of the default world's aligned crops per pixel of crop side: the render camera's
# focal (0.5 * render side / tan(fov / 2), fov 12 deg) times crop side / the crop's side in render
# pixels; median over the 200 images of ``calibrate_on_world`` (312 px at 64 px).
DEFAULT_FOCAL_PER_SIDE = 312.0 / 64.0
# HOG score threshold: dlib's own is 0; world renders score down to about -0.8 and the aligned-box
# gate keeps the world's backgrounds out at this level (see the module docstring).
DEFAULT_SCORE_THRESHOLD = -0.8
# Where an FFHQ-aligned crop puts dlib's face box, as fractions of the crop side: width, |centre x
# - 0.5|, centre y. Correct boxes on world renders span width 0.49-0.70, centre x 0.47-0.53,
# centre y 0.53-0.61 (5th-95th percentiles); misplaced boxes are much smaller, larger or off-centre.
ALIGNED_BOX_WIDTH = (0.4, 0.8)
ALIGNED_BOX_CENTRE_X = 0.1
ALIGNED_BOX_CENTRE_Y = (0.42, 0.7)


@dataclass
class DlibReading:
    """What the reader saw in N images; every float row is NaN where no face was found.

    Attributes:
        found: (N,) bool.
        landmarks: (N, 68, 2) float64 iBUG-68 points in pixels of the input image (x right, y down,
            pixel centres at +0.5).
        descriptor: (N, 128) float64 dlib face-recognition descriptor (NaN with ``descriptors=False``).
        yaw, pitch, roll: (N,) float64 degrees, the fitted head rotation relative to the image's camera.
        jaw: (N,) float64 degrees, the fitted jaw opening (+ opens).
        score: (N,) float64 HOG score of the detection (dlib's usual "is a face" cut-off is 0).
        residual_px: (N,) float64 RMS distance of the fitted model's landmarks to dlib's, input pixels.
    """

    found: np.ndarray
    landmarks: np.ndarray
    descriptor: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    jaw: np.ndarray
    score: np.ndarray
    residual_px: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "DlibReading":
        """N rows of "no face found"."""
        def nan(*shape: int) -> np.ndarray:
            return np.full((n, *shape), np.nan)

        return cls(np.zeros(n, bool), nan(N_LANDMARKS, 2), nan(DESCRIPTOR_DIM), nan(), nan(), nan(), nan(),
                   nan(), nan())

    def __len__(self) -> int:
        return int(self.found.shape[0])

    def subset(self, idx: Any) -> "DlibReading":
        """The rows ``idx`` (an index array, a bool mask or a slice) of every field."""
        return DlibReading(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of dlib descriptors row by row: (N, 128), (N, 128) -> (N,) float64.

    NaN where either row is NaN (a face not found). dlib's usual same-person cut-off is 0.6, but
    default-world faces of different identities lie only ~0.5 apart (median 0.53 between world
    renders, 0.47 between default-generator seeds).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != DESCRIPTOR_DIM:
        raise ShapeError(f"descriptor_distance: expected two (N, {DESCRIPTOR_DIM}) arrays, "
                         f"got {a.shape} and {b.shape}")
    return np.sqrt(((a - b) ** 2).sum(axis=1))


def median_pairwise_distance(descriptors: np.ndarray) -> float:
    """Median ``descriptor_distance`` over all pairs of the (N, 128) rows (NaN rows skipped): how far
    apart different faces of a set lie, the yardstick for an edit's identity change."""
    i, j = np.triu_indices(len(descriptors), k=1)
    return float(np.nanmedian(descriptor_distance(descriptors[i], descriptors[j])))


def head_angles(global_pose: np.ndarray, neck_pose: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll (N, 3) radians of the head rotation R_root @ R_neck.

    global_pose, neck_pose: (N, 3) axis-angle radians (the neck is the root's child, so the head's
    rotation is the product; ``rig.world.priors`` splits it so).
    """
    from scipy.spatial.transform import Rotation

    R = (Rotation.from_rotvec(np.asarray(global_pose, np.float64))
         * Rotation.from_rotvec(np.asarray(neck_pose, np.float64)))
    return R.as_euler("YXZ")  # intrinsic y, x, z: R = R_y(yaw) R_x(pitch) R_z(roll)


def head_angles_in_crop(global_pose: np.ndarray, neck_pose: np.ndarray, crop_frame: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll (N, 3) radians of a world image's head relative to its aligned crop's camera.

    crop_frame: (N, 3, 2) the world's crop centre and half-axes in render pixels (``crop_frame`` of a
    world dataset). A crop x axis at angle phi (y down) shows the render turned by phi
    counter-clockwise on screen, i.e. turned about the model's +z (towards the camera):
    R_crop = R_z(phi) @ R_head.
    """
    from scipy.spatial.transform import Rotation

    frame = np.asarray(crop_frame, np.float64)
    phi = np.arctan2(frame[:, 1, 1], frame[:, 1, 0])
    R_head = Rotation.from_euler("YXZ", head_angles(global_pose, neck_pose))
    spin = Rotation.from_rotvec(np.stack([np.zeros_like(phi), np.zeros_like(phi), phi], axis=1))
    return (spin * R_head).as_euler("YXZ")


def single_image_fit_config(focal_px: float):
    """The ``TrackConfig`` of the reader's per-image fits (see the module docstring for the choices)."""
    from rig.track.config import TrackConfig

    # window=2 is the smallest the tracker accepts; with T=1 and smooth=0 the window holds one frame.
    return TrackConfig(camera="perspective", focal_px=float(focal_px), smooth=0.0, window=2, overlap=0,
                       identity_frames=1, n_expression=0)


class DlibReader:
    """Reads faces out of images with dlib and rig's tracker fit (see the module docstring).

    Args:
        face_model: the model the landmarks are fitted with: ``"default"``, any spec of
            ``rig.face_model.load_face_model``, or a ``FaceModel``.
        upsample_to: side (pixels) images are resized to, bicubic, before dlib sees them.
        descriptors: compute the 128-D descriptors (about half the time per image).
        score_threshold: lowest HOG score accepted.
        aligned: accept only boxes where an FFHQ-aligned crop has its face (rig's world images and
            generator samples are aligned); False accepts any box (then use ``score_threshold=0``).
        focal_per_side: focal length of the fit's camera in pixels per pixel of image side.
    Raises:
        InputError when dlib, the model files or the face model are missing.
    """

    def __init__(self, face_model: Any = "default", upsample_to: int = 256, descriptors: bool = True,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, aligned: bool = True,
                 focal_per_side: float = DEFAULT_FOCAL_PER_SIDE):
        from rig.track.landmarks import DlibLandmarkDetector, face_recognition_models_dir

        if int(upsample_to) < 80:
            raise InputError(f"upsample_to must be at least dlib's 80 px detection window, got {upsample_to}")
        if not focal_per_side > 0:
            raise InputError(f"focal_per_side must be positive, got {focal_per_side}")
        self.upsample_to = int(upsample_to)
        self.aligned = bool(aligned)
        self.focal_per_side = float(focal_per_side)
        self.detector = DlibLandmarkDetector(upsample=0, score_threshold=score_threshold)
        import dlib

        self._dlib = dlib
        self._facerec = None
        if descriptors:
            path = face_recognition_models_dir() / "dlib_face_recognition_resnet_model_v1.dat"
            if not path.is_file():
                raise InputError(f"{path}: dlib face recognition model not found")
            self._facerec = dlib.face_recognition_model_v1(str(path))
        if isinstance(face_model, (str, os.PathLike)):
            import torch

            from rig.face_model import load_face_model

            face_model = load_face_model(face_model, dtype=torch.float64)
        if face_model.data.lmk_faces_idx.shape[0] == 0:
            raise InputError(f"{face_model.data.name}: the face model has no landmark embedding to fit")
        self.face_model = face_model

    @property
    def descriptors(self) -> bool:
        return self._facerec is not None

    def read(self, images: np.ndarray, progress: bool = False) -> DlibReading:
        """Read N images: (N, S, S, 3) uint8 RGB -> ``DlibReading`` with N rows."""
        from tqdm import tqdm

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
            raise ShapeError(f"DlibReader.read: images must be (N, S, S, 3) square RGB, got shape {images.shape}")
        if images.dtype != np.uint8:
            raise ShapeError(f"DlibReader.read: images must be uint8, got {images.dtype}")
        n, side = images.shape[0], images.shape[1]
        out = DlibReading.empty(n)
        cfg = single_image_fit_config(self.focal_per_side * side)
        for i in tqdm(range(n), desc="dlib", unit="image", disable=not progress):
            big = self._upsample(images[i])
            det = self._best_detection(big)
            if det is None:
                continue
            out.found[i] = True
            out.score[i] = det.score
            # Centre-convention pixels scale with the image: u_in = u_big * side / upsample_to.
            out.landmarks[i] = det.landmarks * (side / self.upsample_to)
            if self._facerec is not None:
                out.descriptor[i] = self._descriptor(big, det)
            ypr, out.jaw[i], out.residual_px[i] = self._fit(out.landmarks[i], side, cfg)
            out.yaw[i], out.pitch[i], out.roll[i] = ypr
        return out

    def _upsample(self, image: np.ndarray) -> np.ndarray:
        from PIL import Image

        image = np.ascontiguousarray(image)
        if image.shape[0] == self.upsample_to:
            return image
        return np.asarray(Image.fromarray(image).resize((self.upsample_to, self.upsample_to), Image.BICUBIC))

    def _best_detection(self, big: np.ndarray):
        """The highest-scoring detection (inside the aligned-face region with ``aligned``), or None."""
        for det in self.detector.detect(big):  # best first
            if not self.aligned or _in_aligned_region(det.box / self.upsample_to):
                return det
        return None

    def _descriptor(self, big: np.ndarray, det) -> np.ndarray:
        dlib = self._dlib
        left, top, right, bottom = (int(round(v)) for v in det.box)
        rect = dlib.rectangle(left, top, right - 1, bottom - 1)  # Detection boxes are edges; dlib's are inclusive
        # Back to dlib's integer points (the detector added +0.5 for the centre convention).
        points = [dlib.point(int(round(x - 0.5)), int(round(y - 0.5))) for x, y in det.landmarks]
        shape = dlib.full_object_detection(rect, points)
        return np.asarray(self._facerec.compute_face_descriptor(big, shape), dtype=np.float64)

    def _fit(self, landmarks: np.ndarray, side: int, cfg) -> tuple[np.ndarray, float, float]:
        """(yaw, pitch, roll) degrees, jaw degrees, RMS residual pixels of one T=1 fit."""
        from rig.track.fit import fit_landmarks

        fit = fit_landmarks(self.face_model, landmarks[None], np.ones(1, bool), side, side, cfg)
        p = fit.params
        ypr = head_angles(p.global_pose.numpy(), p.neck_pose.numpy())[0]
        return np.degrees(ypr), float(np.degrees(p.jaw_pose[0, 0].item())), float(fit.residual_px[0])


def _in_aligned_region(box: np.ndarray) -> bool:
    """Whether a face box (left, top, right, bottom as fractions of the image side) sits where an
    FFHQ-aligned crop has its face."""
    width = box[2] - box[0]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return (ALIGNED_BOX_WIDTH[0] <= width <= ALIGNED_BOX_WIDTH[1] and abs(cx - 0.5) <= ALIGNED_BOX_CENTRE_X
            and ALIGNED_BOX_CENTRE_Y[0] <= cy <= ALIGNED_BOX_CENTRE_Y[1])


def _agreement(reading: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Least-squares slope of reading on truth, their correlation and the median |error| (finite rows)."""
    ok = np.isfinite(reading) & np.isfinite(truth)
    r, t = reading[ok], truth[ok]
    if r.size < 3 or np.ptp(t) == 0:
        return {"slope": float("nan"), "corr": float("nan"), "median_abs_err_deg": float("nan")}
    tc = t - t.mean()
    return {"slope": float((tc * (r - r.mean())).sum() / (tc * tc).sum()),
            "corr": float(np.corrcoef(r, t)[0, 1]),
            "median_abs_err_deg": float(np.median(np.abs(r - t)))}


def compare_with_world(reading: DlibReading, params: dict[str, np.ndarray]) -> dict[str, float]:
    """The floor numbers of ``reading`` against a world dataset's parameter table (N rows each).

    Keys: ``n``, ``found_rate``, ``found_rate_score0`` (found with a HOG score >= 0, dlib's usual
    cut-off); ``{yaw,pitch,roll,jaw}_{slope,corr,median_abs_err_deg}`` against ``head_ypr`` and
    ``jaw_pose[:, 0]``; ``crop_{yaw,pitch,roll}_*`` against the truth in the crop's camera
    (``head_angles_in_crop``, when the table has ``crop_frame``); ``descriptor_between_median``:
    median descriptor distance of consecutive images (different identities).
    """
    n = len(reading)
    truth = np.degrees(np.asarray(params["head_ypr"][:n], np.float64))
    jaw = np.degrees(np.asarray(params["jaw_pose"][:n, 0], np.float64))
    out: dict[str, float] = {"n": float(n), "found_rate": float(reading.found.mean()),
                             "found_rate_score0": float((reading.found & (reading.score >= 0)).mean())}
    reads = {"yaw": reading.yaw, "pitch": reading.pitch, "roll": reading.roll}
    for j, name in enumerate(("yaw", "pitch", "roll")):
        out.update({f"{name}_{k}": v for k, v in _agreement(reads[name], truth[:, j]).items()})
    out.update({f"jaw_{k}": v for k, v in _agreement(reading.jaw, jaw).items()})
    if "crop_frame" in params:
        crop = np.degrees(head_angles_in_crop(params["global_pose"][:n], params["neck_pose"][:n],
                                              params["crop_frame"][:n]))
        for j, name in enumerate(("yaw", "pitch", "roll")):
            out.update({f"crop_{name}_{k}": v for k, v in _agreement(reads[name], crop[:, j]).items()})
    between = descriptor_distance(reading.descriptor[:-1], reading.descriptor[1:]) if n > 1 else np.full(1, np.nan)
    out["descriptor_between_median"] = float(np.nanmedian(between)) if np.isfinite(between).any() else float("nan")
    return out


def calibrate_on_world(n: int = 200, seed: int = 0, reader: DlibReader | None = None,
                       progress: bool = False) -> dict[str, float]:
    """The instrument's floor: read ``n`` default-world 64 px renders of ``seed`` with known parameters.

    The renders come from ``rig.world.encoder_run.eval_world_dir`` (rendered once into the user
    cache, then reused). Returns ``compare_with_world``'s numbers plus ``ms_per_image`` (the reading
    alone, without rendering or loading).
    """
    from rig.world.dataset import WorldDataset
    from rig.world.encoder_run import eval_world_dir

    if n < 3:
        raise InputError(f"calibration needs at least 3 images, got {n}")
    ds = WorldDataset(eval_world_dir(64, n, seed, progress=progress))
    images = np.stack([ds.image(i) for i in range(n)])
    reader = reader or DlibReader()
    t0 = time.perf_counter()
    reading = reader.read(images, progress=progress)
    elapsed = time.perf_counter() - t0
    out = compare_with_world(reading, {k: v[:n] for k, v in ds.params.items()})
    out["ms_per_image"] = 1000.0 * elapsed / n
    return out
