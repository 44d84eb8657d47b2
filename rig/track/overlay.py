"""Draw a tracking result over its video: detected vs fitted landmarks and the fitted mesh outline.

The outline is the projected mesh's silhouette and open borders: edges between a triangle facing
the camera and one facing away, plus border edges of camera-facing triangles.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from rig.face_model.model import FaceModel

DETECTED_COLOUR = (40, 220, 60)
FIT_COLOUR = (235, 40, 40)
OUTLINE_COLOUR = (255, 210, 40)


def edge_faces(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2) and their adjacent triangles (E, 2), -1 where only one."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    e_sorted = np.sort(e, axis=1)
    order = np.lexsort((e_sorted[:, 1], e_sorted[:, 0]))
    e_sorted, owner = e_sorted[order], owner[order]
    first = np.ones(len(e_sorted), bool)
    first[1:] = np.any(e_sorted[1:] != e_sorted[:-1], axis=1)
    starts = np.flatnonzero(first)
    edges = e_sorted[starts]
    adj = np.full((len(starts), 2), -1, np.int64)
    adj[:, 0] = owner[starts]
    counts = np.diff(np.append(starts, len(e_sorted)))
    two = counts >= 2
    adj[two, 1] = owner[starts[two] + 1]
    return edges, adj


def outline_segments(pixels: np.ndarray, faces: np.ndarray, edges: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """(K, 2, 2) pixel segments of the silhouette + open borders of one projected mesh.

    pixels: (V, 2) projected vertices. A triangle faces the camera when its projected corners run
    clockwise on screen (v down), as counter-clockwise outward triangles do seen from outside.
    """
    tri = pixels[faces]
    area = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) \
        - (tri[:, 2, 0] - tri[:, 0, 0]) * (tri[:, 1, 1] - tri[:, 0, 1])
    front = area < 0
    f0 = front[adj[:, 0]]
    f1 = np.where(adj[:, 1] >= 0, front[np.maximum(adj[:, 1], 0)], False)
    border = adj[:, 1] < 0
    keep = np.where(border, f0, f0 != f1)
    return pixels[edges[keep]]


def draw_frame(frame_rgb: np.ndarray, detected: np.ndarray | None, fitted: np.ndarray,
               segments: np.ndarray, label: str = "") -> np.ndarray:
    """One overlay frame (H, W, 3) uint8: outline lines, fitted (red) and detected (green) points."""
    image = Image.fromarray(frame_rgb)
    draw = ImageDraw.Draw(image)
    radius = max(1.0, min(image.size) / 250.0)
    for (x0, y0), (x1, y1) in segments:
        draw.line([(x0 - 0.5, y0 - 0.5), (x1 - 0.5, y1 - 0.5)], fill=OUTLINE_COLOUR, width=1)
    if detected is not None:
        for u, v in detected:
            draw.ellipse([u - 0.5 - radius, v - 0.5 - radius, u - 0.5 + radius, v - 0.5 + radius], fill=DETECTED_COLOUR)
    for u, v in fitted:
        draw.ellipse([u - 0.5 - radius, v - 0.5 - radius, u - 0.5 + radius, v - 0.5 + radius], outline=FIT_COLOUR)
    text = "green: detected  red: fit  yellow: mesh outline" + (f"   {label}" if label else "")
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(image)


def project_meshes(face_model: FaceModel, fit, frames: slice) -> np.ndarray:
    """(n, V, 2) projected full-mesh vertices of ``fit`` (a ``FitResult``) for ``frames``."""
    params = fit.params[frames].to(dtype=face_model.dtype, device=face_model.device)
    with torch.no_grad():
        vertices = face_model(params).vertices.to(torch.float64).cpu()
        camera = fit.camera(frames)
        return camera.project(vertices).pixels.numpy()
