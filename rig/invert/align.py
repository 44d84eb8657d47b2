"""``rig align``: a photo -> the aligned crop a generator's training set was made of, and back.

The crop convention is FFHQ's (``rig.world.align.ffhq_crop_frame``) placed from dlib's 68 landmarks:
the eyes are the means of points 36-41 and 42-47, the mouth corners points 48 and 54. NVIDIA's FFHQ
networks were trained on exactly that. The default world places the same recipe on its 3-D eye joints
and lip corners; on 89 world renders at 256 px (``benchmarks/align_world.py``) dlib's frame sits on
the world's own within 0.3 % / 0.8 % of a half-side (centre, median) and 1.5 % in size, well inside
dlib's own spread (median crop error 4 % of the side), so one recipe serves both.

``Alignment`` records where the crop lies in the photo (centre and half-axes in photo pixels), so a
result can be pasted back (``paste_back``). Photos are read by ``read_photo`` (size- and
pixel-capped, one ``InputError`` naming the file for anything that is not an image).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rig.errors import InputError

MAX_PHOTO_BYTES = 64 << 20
MAX_PHOTO_PIXELS = 64_000_000
DETECT_SIDE = 512  # photos are searched at (about) this size; smaller ones are upsampled first
MIN_SCORE = 0.3  # dlib HOG score kept: faces in photos score ~1-2; clothing false positives ~0.1 (astronaut's suit)


@dataclass
class Alignment:
    """Where an aligned crop lies in its photo.

    centre, x_axis, y_axis: (2,) photo pixels (x right, y down); the crop is the square with corners
        centre -/+ x_axis -/+ y_axis (x_axis, y_axis are half-axes, perpendicular, equal length).
    photo_size: (width, height) of the photo; resolution: crop side in pixels.
    landmarks: (68, 2) dlib's points in photo pixels; face_index / n_faces: which detection was used.
    """

    centre: list[float]
    x_axis: list[float]
    y_axis: list[float]
    photo_size: list[int]
    resolution: int
    face_index: int = 0
    n_faces: int = 1
    box: list[float] = field(default_factory=list)
    landmarks: list[list[float]] = field(default_factory=list)

    @property
    def side_px(self) -> float:
        """Crop side in photo pixels."""
        return 2 * float(np.hypot(*self.x_axis))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Alignment":
        try:
            a = cls(**d)
            vec = np.array([a.centre, a.x_axis, a.y_axis], np.float64)
            ok = vec.shape == (3, 2) and np.isfinite(vec).all() and len(a.photo_size) == 2 and a.resolution > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError("alignment record is malformed")
        return a

    def frame(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(centre, x, y) each (1, 2) float64 tensors, as ``rig.world.align`` takes them."""
        return tuple(torch.tensor([v], dtype=torch.float64) for v in (self.centre, self.x_axis, self.y_axis))


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; ``InputError`` naming the file for anything else."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size > MAX_PHOTO_BYTES:
        raise InputError(f"{path}: {path.stat().st_size >> 20} MB is larger than the {MAX_PHOTO_BYTES >> 20} MB rig reads")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PHOTO_PIXELS:
                raise InputError(f"{path}: {im.width}x{im.height} pixels is more than the {MAX_PHOTO_PIXELS:,} rig reads")
            im.draft("RGB", (im.width, im.height))
            arr = np.asarray(im.convert("RGB"))
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    if arr.ndim != 3 or min(arr.shape[:2]) < 8:
        raise InputError(f"{path}: image of {arr.shape[1]}x{arr.shape[0]} pixels is too small")
    return np.ascontiguousarray(arr)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC if scale > 1 else Image.LANCZOS))


def detect_faces(photo: np.ndarray, detector=None):
    """dlib detections of a photo, largest face first, in photo pixels (``rig.track.landmarks.Detection``).

    The photo is searched at ``DETECT_SIDE`` px on its long side (small photos upsampled, large ones
    shrunk) with one doubling, so faces down to ~40 px at that size (1/13 of the long side) are found."""
    from dataclasses import replace

    from rig.track.landmarks import DlibLandmarkDetector

    detector = detector or DlibLandmarkDetector(score_threshold=-0.2)
    scale = DETECT_SIDE / max(photo.shape[:2])
    search = _resize(photo, scale) if abs(scale - 1) > 1e-3 else photo
    found = detector.detect(np.ascontiguousarray(search), upsample=1)
    found = [replace(d, box=d.box / scale, landmarks=d.landmarks / scale) for d in found if d.score >= MIN_SCORE]
    found.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    return found


def landmark_frame(landmarks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centre, x, y) each (1, 2) float64: the crop placed from (68, 2) landmarks (module docstring)."""
    from rig.world.align import ffhq_crop_frame

    p = torch.as_tensor(np.asarray(landmarks, np.float64))
    return ffhq_crop_frame(p[36:42].mean(0)[None], p[42:48].mean(0)[None], p[48][None], p[54][None])


def crop(photo: np.ndarray, centre, x_axis, y_axis, resolution: int) -> np.ndarray:
    """(resolution, resolution, 3) uint8 crop of the square (centre, half-axes) in photo pixels.

    Sampled bilinearly at up to 8x the output resolution and box-filtered down, so a large face is
    shrunk without aliasing; pixels outside the photo repeat its border."""
    from rig.world.align import crop_images

    side = 2 * float(np.hypot(*np.asarray(x_axis, np.float64).reshape(-1)[:2]))
    ss = int(np.clip(np.ceil(side / resolution), 1, 8))
    img = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].double()
    c, x, y = (torch.as_tensor(np.asarray(v, np.float64)).reshape(1, 2) for v in (centre, x_axis, y_axis))
    # Replicate the border: sample a copy padded by the crop's reach.
    pad = int(np.ceil(side)) + 2
    padded = F.pad(img, (pad, pad, pad, pad), mode="replicate")
    out = crop_images(padded, c + pad, x, y, resolution * ss)
    out = F.avg_pool2d(out, ss) if ss > 1 else out
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def align_photo(photo: np.ndarray, resolution: int, face_index: int | None = None,
                source: str = "photo", detector=None, min_side: int | None = None) -> tuple[np.ndarray, Alignment, list[str]]:
    """(crop (R, R, 3) uint8, Alignment, notices) of the face in a photo.

    face_index: which face when there are several (largest first; default the largest, with a notice).
    min_side: smallest crop side in photo pixels accepted (default half the resolution, at least 32):
    a smaller face would be drawn from too few pixels. ``InputError`` naming ``source`` for no face, a
    face index out of range or a tiny face."""
    faces = detect_faces(photo, detector)
    if not faces:
        raise InputError(f"{source}: no face found")
    notices = []
    if face_index is None:
        face_index = 0
        if len(faces) > 1:
            b = faces[0].box
            notices.append(f"{source}: {len(faces)} faces found; took face 0, the largest "
                           f"(box {b[0]:.0f},{b[1]:.0f}-{b[2]:.0f},{b[3]:.0f}); choose another with --face-index")
    elif not 0 <= face_index < len(faces):
        raise InputError(f"{source}: --face-index {face_index}, but {len(faces)} face(s) found (0..{len(faces) - 1})")
    det = faces[face_index]
    c, x, y = landmark_frame(det.landmarks)
    side = 2 * float(x.norm())
    floor = min_side if min_side is not None else max(32, resolution // 2)
    if side < floor:
        raise InputError(f"{source}: the face is too small ({side:.0f} px crop, eyes {np.hypot(*(det.landmarks[42:48].mean(0) - det.landmarks[36:42].mean(0))):.0f} px apart); "
                         f"at least a {floor} px crop is needed")
    al = Alignment(c[0].tolist(), x[0].tolist(), y[0].tolist(), [photo.shape[1], photo.shape[0]], int(resolution),
                   int(face_index), len(faces), det.box.tolist(), det.landmarks.tolist())
    return crop(photo, c[0], x[0], y[0], resolution), al, notices


def crop_fit(image: np.ndarray, detector=None) -> float | None:
    """How far a square image is from being an aligned crop already: the largest deviation of the
    landmark frame from the image's own (centre offset, half-side and axis difference) as a fraction
    of the image side; None when no face is found."""
    faces = detect_faces(image, detector)
    if not faces:
        return None
    c, x, y = landmark_frame(faces[0].landmarks)
    s = image.shape[0]
    own_c, own_x = torch.tensor([[s / 2, s / 2]], dtype=torch.float64), torch.tensor([[s / 2, 0.0]], dtype=torch.float64)
    return float(max((c - own_c).norm(), (x - own_x).norm()) / s)


def paste_back(photo: np.ndarray, crop_image: np.ndarray, alignment: Alignment, feather: float = 0.12) -> np.ndarray:
    """The photo with ``crop_image`` (S, S, 3) uint8 (any S) put back where the crop came from.

    Blended through an ellipse over the face (the crop's inner 76 % wide, 86 % tall, a little below
    centre) with soft edges of ``feather`` x the crop side, so the generator's own background and hair
    edges do not replace the photo's."""
    from rig.world.align import to_crop_pixels

    H, W = photo.shape[:2]
    c, x, y = alignment.frame()
    corners = np.array([c[0] + sx * x[0] + sy * y[0] for sx in (-1, 1) for sy in (-1, 1)])
    x0, y0 = np.floor(corners.min(0)).astype(int).clip(0, [W, H])
    x1, y1 = np.ceil(corners.max(0)).astype(int).clip(0, [W, H])
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    yy, xx = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float64) + 0.5,
                            torch.arange(x0, x1, dtype=torch.float64) + 0.5, indexing="ij")
    S = crop_image.shape[0]
    uv = to_crop_pixels(torch.stack([xx, yy], -1).reshape(1, -1, 2), c, x, y, S)[0]  # crop pixels
    grid = (uv / S * 2 - 1).reshape(1, y1 - y0, x1 - x0, 2)
    src = torch.from_numpy(crop_image).permute(2, 0, 1)[None].double()
    sampled = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
    n = (uv / S).reshape(y1 - y0, x1 - x0, 2)  # 0..1 across the crop
    r = torch.sqrt(((n[..., 0] - 0.5) / 0.38) ** 2 + ((n[..., 1] - 0.54) / 0.43) ** 2)
    f = max(feather, 1e-3) / 0.4  # feather in crop sides; r is ~0.4 crop sides to the edge
    alpha = ((1 - r) / f).clamp(0, 1)[..., None]
    region = torch.from_numpy(photo[y0:y1, x0:x1]).double()
    out[y0:y1, x0:x1] = (alpha * sampled + (1 - alpha) * region).round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def save_alignment(path: str | os.PathLike, alignment: Alignment) -> None:
    from rig.io.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(alignment.to_json(), indent=1))


def load_alignment(path: str | os.PathLike) -> Alignment:
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable alignment file ({e})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: not an alignment record")
    try:
        return Alignment.from_json(d)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
