"""``rig.Editor``: the Python editing API over a generator and its RigNet.

    import rig
    ed = rig.Editor.load("default")                 # generator + RigNet (+ labeler) of the default world
    face = ed.latent(seed=3)                         # a Face, exactly rig generate --seeds 3's latent
    edited = ed.edit(face, yaw=20, jaw=8, expr="smile")
    img = ed.render(edited)                          # (H, W, 3) uint8
    params = ed.read(img)                            # RigParams read back by the labeler
    faces = ed.sweep(face, "yaw", [-20, 0, 20])
    mine = ed.invert("photo.jpg", steps=150)         # a photo (or aligned crop) -> Face (rig.invert)
    ed.save_face(mine, "me.npz"); mine = ed.open_face("me.npz")

The same calls work for any generator with a RigNet trained for it (``rig train rignet``).
Angles in degrees; an unset argument keeps the source face's value (see ``rig.rignet.edit``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import torch

from rig.errors import InputError
from rig.rignet.edit import EditRequest, edit_targets, parse_expr, parse_unit
from rig.rignet.face import Face, check_latent

SWEEP_PARAMS = ("yaw", "pitch", "roll", "jaw")


def _as_request(yaw=None, pitch=None, roll=None, jaw=None, expr=None, units=None, eyes=None,
                absolute=False) -> EditRequest:
    """An ``EditRequest`` from the API's keyword form: ``expr`` a preset name, "name:strength", a
    (name, strength) pair or a list of these; ``units`` a dict, "NAME=V" strings or (name, value) pairs.
    Every value passes the same checks as on the command line."""
    if isinstance(expr, (str, tuple)):
        expr = [expr]
    exprs = tuple(parse_expr(e if isinstance(e, str) else f"{e[0]}:{e[1]}") for e in (expr or ()))
    if isinstance(units, dict):
        units = list(units.items())
    us = tuple(parse_unit(u if isinstance(u, str) else f"{u[0]}={u[1]}") for u in (units or ()))
    return EditRequest(yaw, pitch, roll, jaw, exprs, us, eyes, absolute)


class Editor:
    """A generator ``G``, a loaded RigNet file (``rig.rignet.files.RigNetBundle``) and its labeler."""

    def __init__(self, G, bundle, labeler=None, device: str | torch.device = "cpu"):
        self.G = G.eval().requires_grad_(False).to(device)
        self.bundle = bundle
        self.notices = bundle.check_generator(G) if bundle is not None else []
        self._base_identity = None  # set while drawing with a tuned copy: the original generator's identity
        self._base_G = self.G
        self.device = torch.device(device)
        self.space = bundle.space if bundle is not None else None
        self.calibration = bundle.calibration if bundle is not None else None
        if labeler is None and bundle is not None:
            from rig.rignet.labelers import make_labeler

            labeler = make_labeler(bundle.labeler)
        self.labeler = labeler.to(self.device) if hasattr(labeler, "to") else labeler
        self.rignet = bundle.rignet.to(self.device) if bundle is not None else None

    @classmethod
    def load(cls, network: str = "default", rignet: str | None = "default", device: str = "cpu") -> "Editor":
        """``rignet=None`` (or 'none'): no RigNet (latents, rendering and inversion only; edits refuse)."""
        from rig.rignet.files import load_rignet
        from rig.stylegan2.checkpoints import load_generator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            G = load_generator(network, device=device)
        bundle = None if rignet is None or str(rignet).lower() == "none" else load_rignet(rignet, device=device)
        return cls(G, bundle, device=device)

    def _need_rignet(self) -> None:
        if self.bundle is None:
            raise InputError("this editor has no RigNet (loaded with rignet='none'); train one with rig train rignet")

    # ------------------------------------------------------------------ faces

    @property
    def identity(self) -> str:
        from rig.stylegan2.identity import generator_identity

        return generator_identity(self.G)

    def class_index(self, cls: int | str | None) -> int | None:
        """A class given by index or name -> index (None: the seed's own draw by the class prior)."""
        if cls is None or self.G.c_dim == 0:
            if cls is not None:
                raise InputError("--class: this network is unconditional")
            return None
        names = tuple(getattr(self.G, "class_names", ()))
        if isinstance(cls, str) and not cls.isdigit():
            if cls not in names:
                raise InputError(f"--class {cls!r}: unknown class; this network has {', '.join(names)}")
            return names.index(cls)
        k = int(cls)
        if not 0 <= k < self.G.c_dim:
            raise InputError(f"--class {k} out of range 0..{self.G.c_dim - 1}")
        return k

    @torch.no_grad()
    def latent(self, seed: int, cls: int | str | None = None, truncation_psi: float = 1.0,
               truncation_cutoff: int | None = None) -> Face:
        """The W+ latent ``rig generate --seeds SEED`` draws (same z, class rule and truncation)."""
        from rig.stylegan2.generate import seed_label, seed_latent

        if not (0 <= int(seed) < 2 ** 32):
            raise InputError(f"seed {seed} must be in 0..2**32-1")
        if not math.isfinite(truncation_psi):
            raise InputError(f"--trunc {truncation_psi} is not a finite number")
        k = self.class_index(cls)
        z = torch.from_numpy(seed_latent(int(seed), self.G.z_dim)).to(self.device)
        c = None
        if self.G.c_dim:
            if k is None:
                if getattr(self.G, "class_prior", None) is None:
                    raise InputError(f"this network is conditional (c_dim={self.G.c_dim}): pass a class")
                c = torch.from_numpy(seed_label(int(seed), self.G)).to(self.device)
            else:
                c = torch.zeros(1, self.G.c_dim, device=self.device)
                c[0, k] = 1
        ws = self.G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)[0]
        names = tuple(getattr(self.G, "class_names", ()))
        label = None if c is None else int(c[0].argmax())
        prov = {"seed": int(seed), "class": None if label is None else (names[label] if names else label),
                "truncation_psi": float(truncation_psi), "truncation_cutoff": truncation_cutoff, "noise_mode": "const"}
        return Face(ws.float().cpu(), self.identity, prov)

    def face_from_ws(self, ws, provenance: dict | None = None) -> Face:
        ws = check_latent(np.asarray(ws.detach().cpu() if torch.is_tensor(ws) else ws, np.float32),
                          self.G.num_ws, self.G.w_dim, "latent")
        return Face(ws, self.identity, provenance or {"made_by": "latent"})

    def open_face(self, path) -> Face:
        """Read a face file for this generator. A face with a pivotally tuned generator beside it
        (``rig invert --tune``) switches this editor to that copy (its parent must be this generator)."""
        from rig.rignet.face import load_face, tuned_generator_path

        face = load_face(path, self.G.num_ws, self.G.w_dim)
        tuned = tuned_generator_path(face, path)
        self.G, self._base_identity = self._base_G, None
        if tuned is not None:
            self.use_tuned_generator(tuned, face.tuned_identity, str(path))
        try:
            self.notices += self.check_face(face)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        return face

    def use_tuned_generator(self, path, identity: str | None, source: str) -> None:
        """Draw with the tuned copy of this editor's generator in ``path`` from now on."""
        from rig.stylegan2.checkpoints import load_generator
        from rig.stylegan2.identity import generator_identity

        if not path.is_file():
            raise InputError(f"{source}: its tuned generator {path.name} is missing beside it")
        base = generator_identity(self._base_G)
        G = load_generator(path, device=self.device)
        if identity and generator_identity(G) != identity:
            raise InputError(f"{source}: {path.name} is not the generator this face was tuned with")
        if getattr(G, "parent_identity", None) != base:
            raise InputError(f"{source}: {path.name} was not tuned from this network ({base})")
        self._base_identity = base
        self.G = G.eval().requires_grad_(False)
        self.notices.append(f"{source}: drawing with its tuned generator {path.name}")

    def save_face(self, face: Face, path) -> list:
        """Write a face file; a face with a tuned generator (``invert(..., tune=N)``) also gets that
        copy written beside it as ``NAME.generator.safetensors``. Returns the paths written."""
        from pathlib import Path

        path = Path(path)
        tuned = getattr(face, "_tuned_module", None)
        written = []
        if tuned is not None:
            from rig.invert.pipeline import tuned_name
            from rig.invert.tune import save_tuned_generator

            gpath = path.parent / tuned_name(path)
            save_tuned_generator(gpath, tuned)
            face.tuned_generator = gpath.name
            written.append(gpath)
        face.save(path)
        return [path] + written

    def invert(self, image, steps: int = 150, tune: int = 0, align: str = "auto", face_index: int | None = None,
               inverter: str = "default", progress: bool = False):
        """A photo or aligned crop (a file path, or an (H, W, 3) uint8 array) -> ``Face`` of this
        generator (``rig.invert``), with the labeler's reading and, for a photo, its alignment.
        ``tune`` > 0 also pivotally tunes a copy of the generator (written beside the face by
        ``save_face``). Returns the face; ``face.inversion`` holds every stage (``Inversion``)."""
        from dataclasses import replace as dc_replace

        from rig.invert.inverter import load_inverter
        from rig.invert.losses import EncoderTerms
        from rig.invert.optimize import OptimizeConfig
        from rig.invert.pipeline import InvertConfig, invert_crops, invert_file, summary, target_crop
        from rig.invert.tune import TuneConfig
        from rig.stylegan2.identity import generator_identity

        # Every inversion runs on the original generator (not a tuned copy of an earlier face).
        self.G, self._base_identity = self._base_G, None
        bundle = load_inverter(inverter, device=self.device)
        self.notices += bundle.check_generator(self.G)
        terms = getattr(self, "_terms", None) or EncoderTerms().to(self.device)
        self._terms = terms
        cfg = InvertConfig(OptimizeConfig(steps=int(steps)), TuneConfig(steps=int(tune)), align, face_index)
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            inv = invert_file(self.G, bundle.net, terms, image, cfg, progress=progress)
            source = str(image)
        else:
            arr = np.asarray(image)
            if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                raise InputError(f"invert: expected an (H, W, 3) uint8 image, got {arr.dtype} {arr.shape}")
            crop, al, notices = target_crop(arr, self.G.img_resolution, cfg, "image")
            inv = invert_crops(self.G, bundle.net, terms, crop[None], cfg, progress=progress, alignments=[al])[0]
            inv.notices = notices
            source = "array"
        self.notices += inv.notices
        prov = {"made_by": "rig invert", "source": source, "inverter": bundle.source,
                "steps": int(steps), "tune_steps": int(tune), **summary(inv)}
        face = Face(inv.ws, self.identity, prov,
                    alignment=None if inv.alignment is None else inv.alignment.to_json())
        if inv.tuned is not None:
            # Edits of this face run on the tuned copy from now on, as after open_face.
            face.tuned_identity = generator_identity(inv.tuned)
            face._tuned_module = inv.tuned
            face.generator_identity = inv.tuned.parent_identity
            self._base_identity = inv.tuned.parent_identity
            self.G = inv.tuned.to(self.device)
            self.notices.append("drawing with the tuned generator of the inverted face")
        face.inversion = inv
        if self.labeler is not None and self.space is not None:
            with torch.no_grad():
                controls, _ = self.read_controls(self.synthesize(inv.ws[None]))
            face.controls, face.control_names = controls[0], self.space.names
        return face

    def check_face(self, face: Face) -> list[str]:
        """Refuse a face made for another generator; returns notices."""
        if face.generator_identity and face.generator_identity != self.identity:
            parent = getattr(self.G, "parent_identity", None)
            if face.generator_identity == parent:
                return [f"face made for {parent}, used on its fine-tuned copy {self.identity}"]
            raise InputError(f"the face was made for generator {face.generator_identity}, "
                             f"this network is {self.identity}")
        return []

    # ------------------------------------------------------------------ images and readings

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor, batch: int = 32) -> torch.Tensor:
        """(B, L, w_dim) W+ -> (B, 3, S, S) float images in [-1, 1] (constant noise, as rig generate)."""
        ws = ws.to(self.device)
        return torch.cat([self.G.synthesis(ws[i:i + batch], noise_mode="const") for i in range(0, len(ws), batch)])

    def render(self, face: Face | torch.Tensor) -> np.ndarray:
        """A face (or (L, w_dim) / (B, L, w_dim) W+) -> (H, W, 3) uint8 (or (B, H, W, 3)), PNG rounding."""
        from rig.stylegan2.generate import to_uint8_nhwc

        ws = face.ws if isinstance(face, Face) else face
        single = ws.ndim == 2
        out = to_uint8_nhwc(self.synthesize(ws[None] if single else ws))
        return out[0] if single else out

    @torch.no_grad()
    def read_controls(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Labeler reading of (B, 3, S, S) float images: (controls (B, P), readable (B,))."""
        self._need_rignet()
        return self.labeler.read(images.to(self.device))

    def controls_of(self, face: Face) -> np.ndarray:
        """(P,) the labeler's reading of ``G(face)`` (cached on the face; a cached reading is trusted
        only for a face of this generator)."""
        self._need_rignet()
        if face.controls is None or tuple(face.control_names) != self.space.names \
                or face.generator_identity != self.identity:
            controls, _ = self.read_controls(self.synthesize(face.ws[None]))
            face.controls, face.control_names = controls[0], self.space.names
        return face.controls

    def read(self, image) -> "RigParams":
        """Rig parameters read off an image ((H, W, 3) uint8 or (3, H, W) float in [-1, 1]): head pose
        as the global rotation, the jaw, and expression units mapped back through the calibration."""
        from rig.rignet.preview import controls_to_params

        x = torch.as_tensor(np.asarray(image))
        if x.dtype == torch.uint8 and x.ndim == 3 and x.shape[2] == 3:
            x = x.permute(2, 0, 1).float() / 127.5 - 1
        elif not (x.is_floating_point() and x.ndim == 3 and x.shape[0] == 3):
            raise InputError(f"read: expected an (H, W, 3) uint8 or (3, H, W) float image, got {x.dtype} {tuple(x.shape)}")
        controls, _ = self.read_controls(x[None].float())
        return controls_to_params(self.space, self.calibration, controls[0])

    # ------------------------------------------------------------------ edits

    def targets(self, face: Face, request: EditRequest) -> tuple[np.ndarray, np.ndarray]:
        """(target (P,), edited (P,) bool) of ``request`` on ``face``'s own reading."""
        self._need_rignet()
        return edit_targets(self.space, self.calibration, self.controls_of(face), request)

    @torch.no_grad()
    def apply(self, ws: torch.Tensor, source: np.ndarray, target: np.ndarray) -> torch.Tensor:
        """RigNet on a batch: (B, L, w_dim) W+, (B, P) physical source and target -> (B, L, w_dim)."""
        s = self.space.normalise(torch.as_tensor(np.atleast_2d(source), dtype=torch.float64)).float()
        t = self.space.normalise(torch.as_tensor(np.atleast_2d(target), dtype=torch.float64)).float()
        return self.rignet(ws.to(self.device), s.to(self.device), t.to(self.device))

    def edit(self, face: Face, yaw=None, pitch=None, roll=None, jaw=None, expr=None, units=None, eyes=None,
             absolute: bool = False, request: EditRequest | None = None) -> Face:
        """The face with the edit applied by RigNet (see the module docstring); ``request`` (an
        ``EditRequest``) replaces the keyword form."""
        self.check_face(face)
        keywords = (yaw, pitch, roll, jaw, expr, units, eyes)
        if request is not None and (any(k is not None for k in keywords) or absolute):
            raise InputError("edit: give either request= or keyword edits, not both")
        req = request or _as_request(yaw, pitch, roll, jaw, expr, units, eyes, absolute)
        source = self.controls_of(face)
        if req.is_empty():
            return replace(face, provenance=dict(face.provenance))
        target, _ = self.targets(face, req)
        ws = self.apply(face.ws[None], source[None], target[None])[0].cpu()
        prov = {"made_by": "rig edit", "edit": req.describe(), "parent": face.provenance}
        return self._derived(face, ws, prov)

    def edit_many(self, face: Face, requests: list[EditRequest]) -> list[Face]:
        """One face, many edits, in one batched RigNet call."""
        if not requests:
            raise InputError("no edits to apply (an empty sweep?)")
        self.check_face(face)
        source = self.controls_of(face)
        targets = np.stack([self.targets(face, r)[0] for r in requests])
        ws = self.apply(face.ws[None].expand(len(requests), -1, -1), np.repeat(source[None], len(requests), 0), targets)
        return [self._derived(face, w.cpu(), {"made_by": "rig edit", "edit": r.describe(), "parent": face.provenance})
                for w, r in zip(ws, requests)]

    def _derived(self, face: Face, ws: torch.Tensor, prov: dict) -> Face:
        """A new face made from ``face`` (an edit): a face of a tuned generator keeps referring to it."""
        if face.tuned_generator is None and getattr(face, "_tuned_module", None) is None:
            return Face(ws, self.identity, prov)
        out = Face(ws, face.generator_identity, prov, tuned_generator=face.tuned_generator,
                   tuned_identity=face.tuned_identity)
        if getattr(face, "_tuned_module", None) is not None:
            out._tuned_module = face._tuned_module
        return out

    def sweep(self, face: Face, param: str, values, absolute: bool = False, **fixed) -> list[Face]:
        """``face`` edited with ``param`` (yaw, pitch, roll, jaw, or 'expr:NAME' for a strength sweep)
        set to each of ``values``, other edits in ``fixed``."""
        reqs = []
        for v in values:
            kw = dict(fixed)
            if param.startswith("expr:"):
                extra = kw.get("expr") or []
                kw["expr"] = [(param[5:], float(v))] + ([extra] if isinstance(extra, (str, tuple)) else list(extra))
            elif param in SWEEP_PARAMS:
                kw[param] = float(v)
            else:
                raise InputError(f"sweep parameter {param!r}: choose one of {', '.join(SWEEP_PARAMS)} or expr:NAME")
            reqs.append(_as_request(absolute=absolute, **kw))
        return self.edit_many(face, reqs)

    def refine(self, edited: Face, source: Face, target: np.ndarray, steps: int = 50, lr: float = 0.01,
               appearance: float = 1.0) -> tuple[Face, dict]:
        """"Rendering with Style" refinement: optimise W+ from RigNet's ``edited`` so the labeler's reading
        of ``G(w')`` matches ``target`` (P,), keeping ``G(w')``'s colours close to ``G(source)`` away from
        the face's moving parts (a 4x4-px low-pass image term) and ``w'`` near RigNet's answer."""
        self._need_rignet()
        from rig.rignet.train import group_mse

        if not getattr(self.labeler, "differentiable", False):
            raise InputError("--refine needs a differentiable labeler (the default world's encoder)")
        if steps < 1:
            raise InputError(f"--refine {steps}: needs at least 1 step")
        t = self.space.normalise(torch.as_tensor(target[None], dtype=torch.float64)).float().to(self.device)
        ws0 = edited.ws[None].to(self.device)
        with torch.no_grad():
            low_ref = torch.nn.functional.avg_pool2d(self.synthesize(source.ws[None]), 4)
        ws = ws0.clone().requires_grad_(True)
        opt = torch.optim.Adam([ws], lr=lr)

        def control_error(read) -> float:
            q = self.space.normalise(read.double()).float()
            return float(group_mse(q, t, self.space))

        losses = []
        for _ in range(steps):
            img = self.G.synthesis(ws, noise_mode="const")
            read, _ = self.labeler.readings(img)
            q = self.space.normalise(read.double()).float()
            loss = group_mse(q, t, self.space)
            loss = loss + appearance * (torch.nn.functional.avg_pool2d(img, 4) - low_ref).pow(2).mean() * 10
            loss = loss + 0.01 * (ws - ws0).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        with torch.no_grad():
            before = control_error(self.labeler.readings(self.synthesize(ws0))[0])
            after = control_error(self.labeler.readings(self.synthesize(ws.detach()))[0])
        prov = dict(edited.provenance, refine={"steps": steps, "control_error_before": before,
                                               "control_error_after": after})
        return Face(ws.detach()[0].cpu(), self.identity, prov), {"before": before, "after": after, "losses": losses}
