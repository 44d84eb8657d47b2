"""What ``rig puppet`` does: a source face, an edit (or a sweep, or a parameter sequence) -> images / video.

``PuppetConfig`` holds everything the command takes; ``run_puppet`` loads the ``Editor``, builds the
source face (a seed as ``rig generate`` draws it, a face file or a bare latent), applies RigNet and
writes the outputs atomically:

* one edit: ``-o OUT.png`` (with ``--side-by-side`` the rig render of the target left of the GAN image;
  with ``--display-size`` upsampled for viewing, the native image then also goes to ``OUT_native.png``);
* ``--sweep PARAM=A:B:N`` (one or two): a contact sheet to ``-o``, every native frame to
  ``--frames-dir DIR/frame_NNNN.png`` and the targets to ``DIR/targets.json``;
* ``--params FILE`` (a ``RigParams`` sequence, e.g. ``rig track``'s): one frame per parameter set, an
  ``.mp4`` when ``-o`` ends in it (else a sheet). Relative mode moves the source by each frame's change
  from the sequence's first frame; ``--absolute`` takes the frames' own angles and units.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rig.errors import InputError
from rig.rignet.edit import EditRequest
from rig.rignet.face import Face

SWEEPABLE = ("yaw", "pitch", "roll", "jaw")


@dataclass(frozen=True)
class Sweep:
    """``param`` over ``values``: yaw / pitch / roll / jaw (degrees) or ``expr:NAME`` (strength) from
    ``PARAM=A:B:N``, or ``expr`` over preset names (each at strength 1) from ``expr=smile,blink``."""

    param: str
    values: tuple

    @property
    def n(self) -> int:
        return len(self.values)

    def label(self, v) -> str:
        return str(v) if self.param == "expr" else f"{self.param} {v:g}"


def parse_sweep(text: str) -> Sweep:
    """``"yaw=-20:20:7"``, ``"expr:smile=0:1:5"`` or ``"expr=smile,surprise,blink"`` -> ``Sweep``."""
    text = str(text)
    m = re.fullmatch(r"\s*expr\s*=\s*([A-Za-z_]+(?:\s*,\s*[A-Za-z_]+)*)\s*", text)
    if m:
        names = tuple(n.strip() for n in m.group(1).split(","))
        if len(names) > 64:
            raise InputError(f"--sweep {text!r}: at most 64 presets")
        return Sweep("expr", names)
    m = re.fullmatch(r"\s*([A-Za-z_:]+)\s*=\s*([^:]+):([^:]+):(\d+)\s*", text)
    if not m:
        raise InputError(f"--sweep {text!r}: expected PARAM=A:B:N (e.g. yaw=-20:20:7, expr:smile=0:1:5) "
                         "or expr=NAME,NAME,...")
    param = m.group(1)
    if param not in SWEEPABLE and not param.startswith("expr:"):
        raise InputError(f"--sweep {text!r}: PARAM must be one of {', '.join(SWEEPABLE)} or expr:NAME")
    try:
        a, b = float(m.group(2)), float(m.group(3))
    except ValueError:
        raise InputError(f"--sweep {text!r}: A and B must be numbers") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise InputError(f"--sweep {text!r}: A and B must be finite")
    n = int(m.group(4))
    if not 1 <= n <= 64:
        raise InputError(f"--sweep {text!r}: N must be 1..64")
    return Sweep(param, tuple(float(v) for v in np.linspace(a, b, n)))


@dataclass(frozen=True)
class PuppetConfig:
    """Everything ``rig puppet`` takes (see the module docstring)."""

    output: Path
    network: str = "default"
    rignet: str = "default"
    seed: int | None = None
    cls: str | None = None
    truncation_psi: float = 1.0
    face_file: Path | None = None
    latent_file: Path | None = None
    request: EditRequest = field(default_factory=EditRequest)
    sweeps: tuple[Sweep, ...] = ()
    params_file: Path | None = None
    frames_dir: Path | None = None
    side_by_side: bool = False
    display_size: int | None = None
    save_w: bool = False
    save_face: Path | None = None
    refine_steps: int = 0
    fps: float = 25.0
    device: str = "cpu"

    def validate(self) -> "PuppetConfig":
        sources = [x is not None for x in (self.seed, self.face_file, self.latent_file)]
        if sum(sources) != 1:
            raise InputError("rig puppet: give exactly one source: --seed, --face or --latent")
        if len(self.sweeps) > 2:
            raise InputError("rig puppet: at most two --sweep options (a grid)")
        if self.sweeps and self.params_file is not None:
            raise InputError("rig puppet: --sweep and --params do not combine")
        if self.display_size is not None and not 16 <= self.display_size <= 4096:
            raise InputError(f"--display-size {self.display_size}: choose 16..4096")
        if self.refine_steps < 0 or self.refine_steps > 10000:
            raise InputError(f"--refine {self.refine_steps}: choose 0..10000 steps")
        if self.output.suffix.lower() not in (".png", ".mp4"):
            raise InputError(f"{self.output}: -o must end in .png (or .mp4 with --params)")
        if self.output.suffix.lower() == ".mp4" and self.params_file is None:
            raise InputError(f"{self.output}: an .mp4 output needs --params (one frame per parameter set)")
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise InputError(f"--fps {self.fps}: must be a positive number")
        return self


@dataclass
class PuppetResult:
    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def source_face(ed, cfg: PuppetConfig) -> Face:
    """The source face of ``cfg``: a seed, a face file or a bare latent, checked against the network."""
    from rig.rignet.face import load_latent_npy

    if cfg.seed is not None:
        return ed.latent(cfg.seed, cfg.cls, cfg.truncation_psi)
    if cfg.face_file is not None:
        return ed.open_face(cfg.face_file)  # switches to the face's tuned generator, if it has one
    ws = load_latent_npy(cfg.latent_file, ed.G.num_ws, ed.G.w_dim)
    return ed.face_from_ws(ws, {"made_by": "latent file", "path": str(cfg.latent_file)})


def _deg(controls: np.ndarray, space) -> dict:
    out = {n: round(math.degrees(float(controls[space.index(n)])), 2) for n in ("yaw", "pitch", "roll", "jaw_x")
           if space.has(n)}
    if "jaw_x" in out:
        out["jaw"] = out.pop("jaw_x")
    return out


def request_for_params(params_row: dict, first: dict | None, space, calibration, absolute: bool,
                       notices: list[str]) -> EditRequest:
    """An ``EditRequest`` for one frame of a ``RigParams`` sequence (arrays of one frame, radians)."""
    from scipy.spatial.transform import Rotation

    def head_ypr(row) -> np.ndarray:
        R = Rotation.from_rotvec(row["global_pose"]) * Rotation.from_rotvec(row["neck_pose"])
        return np.degrees(R.as_euler("YXZ"))

    ypr = head_ypr(params_row)
    jaw = math.degrees(float(params_row["jaw_pose"][0]))
    units = []
    expr = np.asarray(params_row["expression"], np.float64)
    if not absolute and first is not None:
        ypr = ypr - head_ypr(first)
        jaw = jaw - math.degrees(float(first["jaw_pose"][0]))
        expr = expr - np.asarray(first["expression"], np.float64)
    if calibration is not None:
        names = space.names[:len(expr)]
        skipped = []
        for k, name in enumerate(names):
            if name in calibration["units"] and name not in space.frozen and abs(expr[k]) > 1e-4:
                units.append((name, float(expr[k])))
            elif abs(expr[k]) > 1e-4 and name in space.frozen:
                skipped.append(name)
        if skipped and not any(n.startswith("--params ignores") for n in notices):
            notices.append(f"--params ignores units the generator never varies: {', '.join(sorted(set(skipped)))}")
    return EditRequest(float(ypr[0]), float(ypr[1]), float(ypr[2]), jaw, (), tuple(units), None, absolute)


def _load_sequence(path: Path) -> list[dict]:
    """Frames (dicts of one frame's arrays) of a ``RigParams`` file or a ``rig track`` output."""
    from rig.face_model import load_face_model
    from rig.face_model.params import RigParams

    model = load_face_model("default")
    is_track = False
    if path.suffix.lower() == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                is_track = "landmarks_fit" in z.files
        except (ValueError, OSError, EOFError) as e:
            raise InputError(f"{path}: not a readable .npz ({e})") from None
    if is_track:
        from rig.track.pipeline import load_track_params

        seq = load_track_params(path, model)
    else:
        seq = RigParams.load(path, model.n_shape, model.n_expression)
    arrays = {k: v.double().cpu().numpy() for k, v in seq.as_dict().items()}
    return [{k: v[i] for k, v in arrays.items()} for i in range(len(seq))]


def run_puppet(cfg: PuppetConfig, progress: bool = True, editor=None) -> PuppetResult:
    """Do what ``cfg`` asks (see the module docstring); ``editor`` reuses a loaded ``Editor``."""
    from tqdm import tqdm

    from rig.render.images import save_png
    from rig.rignet.editor import Editor
    from rig.rignet.sheets import grid, pair, upscale

    cfg = cfg.validate()
    t0 = time.perf_counter()
    ed = editor or Editor.load(cfg.network, cfg.rignet, device=cfg.device)
    face = source_face(ed, cfg)
    res = PuppetResult(lines=list(ed.notices))
    space = ed.space
    source = ed.controls_of(face)
    res.lines.append(f"source: {json.dumps(face.provenance)}; reads {json.dumps(_deg(source, space))}")
    rig_renderer = None
    if cfg.side_by_side:
        from rig.rignet.preview import ControlRenderer

        rig_renderer = ControlRenderer(space, ed.calibration, ed.G.img_resolution)

    def view(img: np.ndarray, target: np.ndarray | None) -> np.ndarray:
        rig_img = rig_renderer.render(target)[0] if rig_renderer is not None and target is not None else None
        out = pair(img, rig_img)
        return upscale(out, cfg.display_size) if cfg.display_size else out

    out = Path(cfg.output)
    if cfg.sweeps or cfg.params_file is not None:
        if cfg.params_file is not None:
            rows = _load_sequence(Path(cfg.params_file))
            reqs = [request_for_params(r, rows[0], space, ed.calibration, cfg.request.absolute, res.lines) for r in rows]
            labels_x, shape = [str(i) for i in range(len(reqs))], (1, len(reqs))
        else:
            a = cfg.sweeps[0]
            b = cfg.sweeps[1] if len(cfg.sweeps) == 2 else None
            reqs, labels_x = [], [a.label(v) for v in a.values]
            for vb in (b.values if b else [None]):
                for va in a.values:
                    r = cfg.request
                    for sw, v in ((a, va), (b, vb)):
                        if sw is None:
                            continue
                        if sw.param == "expr":
                            r = replace(r, expr=r.expr + ((v, 1.0),))
                        elif sw.param.startswith("expr:"):
                            r = replace(r, expr=r.expr + ((sw.param[5:], float(v)),))
                        else:
                            r = replace(r, **{sw.param: float(v)})
                    reqs.append(r)
            shape = (len(b.values) if b else 1, a.n)
        targets = np.stack([ed.targets(face, r)[0] for r in reqs])
        ws = ed.apply(face.ws[None].expand(len(reqs), -1, -1), np.repeat(source[None], len(reqs), 0), targets)
        images = []
        for i in tqdm(range(0, len(ws), 32), desc="puppet", unit="batch", disable=not progress or len(ws) <= 32):
            images.append(ed.render(ws[i:i + 32].cpu()))
        images = np.concatenate(images)
        if cfg.frames_dir is not None:
            fd = Path(cfg.frames_dir)
            for i, img in enumerate(images):
                res.written.append(save_png(fd / f"frame_{i:04d}.png", img))
            from rig.io.atomic import write_text_atomic

            write_text_atomic(fd / "targets.json", json.dumps(
                [{"frame": i, "request": r.describe(), "target_deg": _deg(t, space),
                  "target": dict(zip(space.names, map(float, t)))} for i, (r, t) in enumerate(zip(reqs, targets))],
                indent=1) + "\n")
            res.written.append(fd / "targets.json")
        views = [view(img, t) for img, t in zip(images, targets)]
        if out.suffix.lower() == ".mp4":
            from rig.io.video import write_video

            write_video(out, views, cfg.fps)
        else:
            cells = [views[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]
            row_labels = [cfg.sweeps[1].label(v) for v in cfg.sweeps[1].values] if len(cfg.sweeps) == 2 else None
            save_png(out, grid(cells, labels_x if cfg.sweeps else None, row_labels,
                               label_width=80 if row_labels else 0))
        res.written.append(out)
        res.lines.append(f"{len(reqs)} frames -> {out}")
    else:
        target, _ = ed.targets(face, cfg.request)
        edited = ed.edit(face, request=cfg.request)
        if cfg.refine_steps:
            edited, rep = ed.refine(edited, face, target, steps=cfg.refine_steps)
            res.lines.append(f"refine {cfg.refine_steps} steps: control error {rep['before']:.4f} -> {rep['after']:.4f} "
                             "(mean squared, standardised units, labeler's reading)")
        img = ed.render(edited)
        got = ed.controls_of(edited)
        res.lines.append(f"target {json.dumps(_deg(target, space))}; output reads {json.dumps(_deg(got, space))}")
        v = view(img, target if cfg.side_by_side else None)
        res.written.append(save_png(out, v))
        if v.shape != img.shape:
            res.written.append(save_png(out.with_name(out.stem + "_native.png"), img))
        if cfg.save_w:
            from rig.render.images import save_npy

            res.written.append(save_npy(out.with_name(out.stem + "_w.npy"), edited.ws.numpy()))
        if cfg.save_face is not None:
            edited.save(cfg.save_face)
            res.written.append(Path(cfg.save_face))
    res.lines.append(f"done in {time.perf_counter() - t0:.2f} s")
    return res
