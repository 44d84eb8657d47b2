"""``WorldRenderer``: world parameters -> aligned RGB crops and their 2-D landmarks.

Per batch: pose the face model, grow the hair shell, colour the vertices (skin tone, lips, brows,
sclera / iris, teeth, hair), shade with the sample's SH lighting in one supersampled render of a
fixed camera, composite over the background inside the FFHQ-style crop (from the eye joints and the
mouth corners), and box-filter down to the output resolution.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from rig.face_model import FaceModel, RigParams
from rig.render.camera import frame_head
from rig.render.passes import RenderConfig, render_mesh, to_srgb
from rig.render.shading import vertex_normals
from rig.world.align import crop_images, ffhq_crop_frame, to_crop_pixels
from rig.world.background import BACKGROUND_KINDS, draw_background
from rig.world.config import WorldConfig
from rig.world.hair import HAIR_STYLES, ScalpShell

# Albedo of fixed-colour regions (linear RGB); lips and brows are derived from skin / hair instead.
SCLERA = (0.75, 0.72, 0.68)
TEETH = (0.80, 0.76, 0.66)
LIP_TINT = np.array([0.78, 0.52, 0.52], np.float32)


def _stack(rows: list[dict], key: str) -> torch.Tensor:
    return torch.as_tensor(np.stack([np.asarray(r[key]) for r in rows]))


def _left_right(pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, 2) two image points per row -> (left (B, 2), right (B, 2)) by their x coordinate."""
    swap = (pair[:, 1, 0] < pair[:, 0, 0])[:, None]
    return torch.where(swap, pair[:, 1], pair[:, 0]), torch.where(swap, pair[:, 0], pair[:, 1])


# Peak memory of ``WorldRenderer.render`` above the loaded model, per render pixel of each image
# (measured 85-103 bytes at 256-1024 px renders on CPU, float32; rounded up).
RENDER_BYTES_PER_PIXEL = 128


def render_side(cfg: WorldConfig) -> int:
    """Side in pixels of the square render a ``cfg`` crop is cut from (about 4 x the output side)."""
    # Crop side in render pixels ~ 0.25 m at the head; render so the crop gets resolution*supersample pixels.
    out_px = cfg.resolution * cfg.supersample
    return int(np.ceil(out_px / 0.5 / 8) * 8)


def render_bytes_per_image(cfg: WorldConfig) -> int:
    """Memory (bytes) one image of a ``WorldRenderer.render`` batch needs under ``cfg``, an upper estimate."""
    return RENDER_BYTES_PER_PIXEL * render_side(cfg) ** 2


class WorldRenderer:
    """Renders parameter rows (``rig.world.priors.draw_params``) of one face model under a ``WorldConfig``."""

    def __init__(self, model: FaceModel, cfg: WorldConfig):
        self.model = model.float()
        self.cfg = cfg.validate()
        data = model.data
        self.scalp = ScalpShell.from_model_data(data)
        regions = np.asarray(data.vertex_regions)
        names = list(data.region_names)
        self.region = {n: regions == names.index(n) for n in names}
        v = data.v_template
        lips = np.flatnonzero(self.region["lips"])
        # Mouth corners: the lip vertices furthest to each side (stable even without a landmark embedding).
        self.mouth_corners = (int(lips[np.argmin(v[lips, 0])]), int(lips[np.argmax(v[lips, 0])]))
        self.iris = self._iris_vertices(data)
        self.vertex_albedo = self._vertex_albedo_model(data)
        self.render_size = render_side(cfg)
        self.camera = frame_head(torch.as_tensor(v), self.render_size, self.render_size, fov_deg=cfg.fov_deg, margin=1.0)

    def _iris_vertices(self, data) -> np.ndarray:
        """Eye-region vertices on the front cap of each eyeball (bool (V,))."""
        out = np.zeros(data.n_vertices, bool)
        eyes = np.flatnonzero(self.region["eyes"])
        J = data.J_regressor @ data.v_template
        for joint in (3, 4):
            side = eyes[np.sign(data.v_template[eyes, 0]) == np.sign(J[joint, 0])]
            d = data.v_template[side] - J[joint]
            d /= np.linalg.norm(d, axis=1, keepdims=True).clip(1e-9)
            out[side[d[:, 2] > 0.85]] = True
        return out

    @staticmethod
    def _vertex_albedo_model(data) -> tuple[np.ndarray, np.ndarray] | None:
        """The model's albedo textures sampled at each vertex's UV: mean (V, 3) and basis (K, V, 3), or None.

        At 64-128 px a face spans fewer pixels than the mesh has vertices, so per-vertex albedo keeps
        what the texture shows while letting every image of a batch have its own colours.
        """
        if data.albedo_mean is None or data.albedo_basis is None or data.uv_coords is None or data.uv_faces is None:
            return None
        from rig.render.shading import sample_texture

        uv_of_vertex = np.zeros((data.n_vertices, 2))
        uv_of_vertex[data.faces.ravel()] = data.uv_coords[data.uv_faces.ravel()]  # seams: any corner's UV
        uv = torch.as_tensor(uv_of_vertex, dtype=torch.float32)[None, None]  # (1, 1, V, 2)
        textures = torch.as_tensor(np.concatenate([data.albedo_mean[None], data.albedo_basis]), dtype=torch.float32)
        values = sample_texture(textures, uv.expand(len(textures), -1, -1, -1))[:, 0].numpy()  # (1+K, V, 3)
        return values[0], values[1:]

    def _albedo_colours(self, coeffs: np.ndarray) -> np.ndarray:
        """(V, 3) albedo for albedo-model coefficients (K,).

        The model's components are additive offsets sized for a mid skin tone; on very dark skin a
        negative lip offset would turn the lips teal and a cheek offset paint red blotches. So every
        component other than 'skin_tone' is scaled by the skin's mean brightness relative to the
        mid tone, which makes them act like relative tints.
        """
        mean, basis = self.vertex_albedo
        names = list(self.model.data.albedo_names)
        skin = self.region["skin"]
        scale = np.ones(len(coeffs))
        if "skin_tone" in names:
            k = names.index("skin_tone")
            toned = mean[skin] + coeffs[k] * basis[k][skin]
            ratio = float(np.clip(toned, 0, 1).mean() / max(mean[skin].mean(), 1e-6))
            scale[:] = min(ratio, 1.0)
            scale[k] = 1.0
        return np.clip(mean + np.tensordot(coeffs * scale, basis, axes=1), 0, 1)

    def _vertex_colours(self, rows: list[dict]) -> torch.Tensor:
        V = self.model.n_vertices
        cols = np.zeros((len(rows), V, 3), np.float32)
        r = self.region
        for b, row in enumerate(rows):
            skin, hair = np.asarray(row["skin_rgb"]), np.asarray(row["hair_rgb"])
            bald = list(HAIR_STYLES)[int(row["hair_style"])] == "bald"
            rng = np.random.default_rng(int(row["colour_noise_seed"]))
            if self.vertex_albedo is not None and len(row["albedo"]):
                c = self._albedo_colours(np.asarray(row["albedo"]))
            else:
                c = np.tile(skin, (V, 1)) * (1 + rng.normal(0, 0.03, (V, 1)))
                c[r["neck"]] = skin
                c[r["lips"]] = skin * LIP_TINT
                c[r["brows"]] = hair * 0.8 + skin * 0.2
                c[r["eyes"]] = SCLERA
                c[self.iris] = row["iris_rgb"]
            c[r["teeth"]] = TEETH
            if not bald:
                c[r["hair"]] = hair
            cols[b] = c
        return torch.from_numpy(cols)

    def render(self, rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images (B, S, S, 3) uint8 (sRGB), landmarks (B, 68, 2) float32 crop pixels (x right, y down;
        empty (B, 0, 2) for a model without landmarks), crop frames (B, 3, 2) float32 (centre, x, y half-axes
        in render pixels)."""
        cfg = self.cfg
        B = len(rows)
        m = self.model
        params = RigParams(*(_stack(rows, k).float().reshape(B, -1) for k in
                             ("shape", "expression", "global_pose", "neck_pose", "jaw_pose", "eye_pose", "translation")))
        with torch.no_grad():
            out = m(params)
            verts, faces = out.vertices, m.faces
            colours = self._vertex_colours(rows)
            normals = vertex_normals(verts, faces)
            # Hair shells differ per style, so group the batch by style and render each group.
            rgb = torch.zeros(B, self.render_size, self.render_size, 3)
            mask = torch.zeros(B, self.render_size, self.render_size)
            styles = [list(HAIR_STYLES)[int(r["hair_style"])] for r in rows]
            sh = _stack(rows, "sh").float()
            for style in sorted(set(styles)):
                idx = [i for i, s in enumerate(styles) if s == style]
                v, f, col = verts[idx], faces, colours[idx]
                shell = self.scalp.grow(verts[idx], normals[idx], style)
                if shell is not None:
                    K = shell.shape[1]
                    v = torch.cat([v, shell], 1)
                    f = torch.cat([faces, torch.as_tensor(self.scalp.faces) + verts.shape[1]])
                    hair = _stack([rows[i] for i in idx], "hair_rgb").float()
                    noise = torch.as_tensor(np.stack([np.random.default_rng(int(rows[i]["colour_noise_seed"]) + 1)
                                                      .normal(1, 0.25, (K, 1)) for i in idx]), dtype=torch.float32)
                    col = torch.cat([col, hair[:, None, :] * noise.clamp(0.3, 2)], 1)
                passes = render_mesh(v, f, self.camera, RenderConfig(light=sh[idx], antialias=False), vertex_colors=col)
                rgb[idx] = passes.rgb.float()
                mask[idx] = passes.mask.float()
            eyes = self.camera.project(out.joints[:, 3:5]).pixels  # eye_left (+x, image right), eye_right
            mouth = self.camera.project(verts[:, list(self.mouth_corners)]).pixels
            # Image-left points first (per image: which of a pair is on the left depends on the view).
            el, er = _left_right(eyes)
            ml, mr = _left_right(mouth)
            c, x, y = ffhq_crop_frame(el.float(), er.float(), ml.float(), mr.float(), rotate=cfg.align_rotation)
            hi = cfg.resolution * cfg.supersample
            both = torch.cat([rgb.permute(0, 3, 1, 2), mask[:, None]], 1)
            crop = crop_images(both, c, x, y, hi)
            bgs = torch.stack([torch.from_numpy(draw_background(BACKGROUND_KINDS[int(r["background"])],
                                                                np.random.default_rng(int(r["background_seed"])), hi))
                               for r in rows]).permute(0, 3, 1, 2)
            alpha = crop[:, 3:4]
            comp = crop[:, :3] + (1 - alpha) * bgs  # rgb is already premultiplied (black outside the mask)
            comp = F.avg_pool2d(comp, cfg.supersample) if cfg.supersample > 1 else comp
            images = (to_srgb(comp.permute(0, 2, 3, 1)) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
            lmk = self.camera.project(out.landmarks).pixels if out.landmarks.shape[1] else out.landmarks[..., :2]
            lmk = to_crop_pixels(lmk.float(), c, x, y, cfg.resolution) if lmk.shape[1] else lmk.float()
        frames = torch.stack([c, x, y], 1)
        return images, lmk.numpy().astype(np.float32), frames.numpy().astype(np.float32)
