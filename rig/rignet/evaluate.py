"""``rig eval rignet``: how well RigNet's edits obey the rig, read by two instruments, beside their floors.

For ``n`` source faces (seeds ``seed .. seed + n - 1`` as ``rig generate`` draws them, classes by the
stored frequencies) the evaluation asks for absolute targets spread over the world's ranges:

* yaw in -30..30 deg (7 values), pitch in -15..15 (5), jaw opening 0..15 (4): target vs reading,
  median and 90th percentile |error|, by the world encoder and by dlib 68 landmarks + the tracker's
  fit (``rig.instruments.dlib_reader``); for dlib, its slope against the target divided by its own
  slope on world renders with known yaw (its floor), since dlib under-reads turns at 64 px;
* each named preset at strength 1 (``--absolute --expr NAME``): the encoder's reading along the preset
  (``rig.rignet.calibration.along``) as a share of what world renders of that preset get (a fresh set
  of renders, not the calibration's own); ``--eyes closed``: share of faces with both lids read closed;
* drift of the groups not edited: a turn must leave the jaw and the expression, a preset the pose;
* identity: dlib's 128-D descriptor distance of ``G(w')`` to ``G(w)`` by edit kind, beside the median
  distance between different unedited sources and the pose's own share (the same turn on renders of
  one head: a turned face is a different image even for the same person);
* the floors: both instruments on world renders with exactly known parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from rig.rignet.edit import EditRequest

YAWS = (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0)
PITCHES = (-15.0, -7.5, 0.0, 7.5, 15.0)
JAWS = (0.0, 5.0, 10.0, 15.0)


@dataclass
class RigNetReport:
    """Numbers of one evaluation (see the module docstring); ``lines()`` prints the control table."""

    n: int
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)   # (measure, encoder, dlib, floor)
    numbers: dict = field(default_factory=dict)
    verdicts: list[tuple[str, bool]] = field(default_factory=list)

    def lines(self) -> list[str]:
        w = max(len(r[0]) for r in self.rows)
        out = [f"{'measure':<{w}} | {'encoder':<22} | {'dlib + fit':<22} | floor (world renders)",
               "-" * (w + 75)]
        out += [f"{a:<{w}} | {b:<22} | {c:<22} | {d}" for a, b, c, d in self.rows]
        out.append("")
        out += [f"[{'pass' if ok else 'FAIL'}] {text}" for text, ok in self.verdicts]
        return out


def _med_p90(x: np.ndarray) -> str:
    x = np.abs(np.asarray(x, np.float64))
    x = x[np.isfinite(x)]
    return "n/a" if not len(x) else f"{np.median(x):.2f} / {np.percentile(x, 90):.2f} deg"


def _slope(target: np.ndarray, reading: np.ndarray) -> float:
    ok = np.isfinite(reading)
    if ok.sum() < 3 or np.ptp(target[ok]) == 0:
        return float("nan")
    return float(np.polyfit(target[ok], reading[ok], 1)[0])


def _pose_share_of_identity(reader, n: int = 16, seed: int = 23, turns=(10.0, 20.0, 30.0)) -> dict[float, float]:
    """turn -> median dlib distance between renders of one head at yaw 0 and at +-turn (world renders):
    how far a turn alone moves the descriptor, with the identity exactly kept."""
    from rig.instruments.dlib_reader import descriptor_distance
    from rig.rignet.calibration import render_world_rows

    yaws = (0.0,) + tuple(s * t for t in turns for s in (-1, 1))
    d = reader.read(render_world_rows(_turned_world_rows(n, seed, yaws))).descriptor.reshape(len(yaws), n, -1)
    out = {}
    for k, t in enumerate(turns):
        out[t] = float(np.nanmedian(np.concatenate([descriptor_distance(d[0], d[1 + 2 * k]),
                                                    descriptor_distance(d[0], d[2 + 2 * k])])))
    return out


def _turned_world_rows(n: int, seed: int, yaws) -> list[dict]:
    """World rows of ``n`` neutral heads, each at every yaw of ``yaws`` (degrees; the neck carries
    ``preview.NECK_SHARE`` of the turn, as in the rig renders)."""
    from rig.face_model.params import split_head_rotation
    from rig.rignet.calibration import world_rows
    from rig.rignet.preview import NECK_SHARE

    base = world_rows(n, seed)
    rows = []
    for yaw in yaws:
        ypr = np.array([math.radians(yaw), 0.0, 0.0])
        root, neck = split_head_rotation(ypr, NECK_SHARE)
        rows += [dict(r, global_pose=root.astype(np.float32), neck_pose=neck.astype(np.float32),
                      head_ypr=ypr.astype(np.float32)) for r in base]
    return rows


def _drift_floor(ed, presets, n: int = 32, seed: int = 37) -> dict:
    """The encoder's own cross-talk: on world renders of one neutral head at yaw 0 and +-20 deg, how far
    its reading moves along each preset (largest share, median) and its jaw (deg) with nothing else changed."""
    from rig.rignet.calibration import along, read_uint8, render_world_rows

    read = read_uint8(ed.labeler, render_world_rows(_turned_world_rows(n, seed, (0.0, -20.0, 20.0)))).reshape(3, n, -1)
    k = ed.space.index("jaw_x")
    expr = [np.abs(along(read[i], ed.calibration, p, ed.space) - along(read[0], ed.calibration, p, ed.space))
            for p in presets for i in (1, 2)]
    jaw = np.degrees(np.abs(read[1:, :, k] - read[0, None, :, k]))
    return {"expression_share": float(np.median(np.max(np.stack(expr), 0))), "jaw_deg": float(np.median(jaw))}


def _preset_share_of_identity(reader, n: int = 16, seed: int = 29) -> float:
    """Median dlib distance between renders of one head neutral and with each named preset at strength 1."""
    from rig.face_model import load_face_model
    from rig.instruments.dlib_reader import descriptor_distance
    from rig.rignet.calibration import render_world_rows, with_preset, world_rows
    from rig.world.priors import preset_table

    table = preset_table(load_face_model("default"))
    base = world_rows(n, seed)
    rows = list(base)
    for name in sorted(table):
        rows += with_preset(base, table[name])
    d = reader.read(render_world_rows(rows)).descriptor.reshape(1 + len(table), n, -1)
    return float(np.nanmedian(np.concatenate([descriptor_distance(d[0], d[k]) for k in range(1, len(d))])))


def evaluate_rignet(editor, n: int = 64, seed: int = 1000, progress: bool = True, dlib: bool = True,
                    world_n: int = 200, faces: list | None = None) -> RigNetReport:
    """The ``RigNetReport`` of ``editor`` (an ``Editor`` with a calibrated RigNet) on ``n`` sources:
    seeds ``seed ..``, or the given ``faces`` (e.g. inverted ones; then ``n`` is their number)."""
    from tqdm import tqdm

    from rig.rignet.calibration import along, read_uint8, render_world_rows, with_preset, world_rows

    ed, space, cal = editor, editor.space, editor.calibration
    faces = list(faces) if faces is not None else [ed.latent(seed + i) for i in range(n)]
    n = len(faces)
    rep = RigNetReport(n)
    for f in faces:
        ed.controls_of(f)
    presets = sorted(k for k in cal["presets"] if k != "neutral") if cal else []
    kinds: list[tuple[str, float | str, EditRequest]] = []
    kinds += [("yaw", v, EditRequest(yaw=v, absolute=True)) for v in YAWS]
    kinds += [("pitch", v, EditRequest(pitch=v, absolute=True)) for v in PITCHES]
    kinds += [("jaw", v, EditRequest(jaw=v, absolute=True)) for v in JAWS]
    kinds += [("preset", p, EditRequest(expr=((p, 1.0),), absolute=True)) for p in presets]
    if cal:
        kinds.append(("eyes", "closed", EditRequest(eyes="closed")))
    K = len(kinds)
    images, targets, sources = [], [], []
    for f in tqdm(faces, desc="eval rignet: edit", disable=not progress):
        out = ed.edit_many(f, [k[2] for k in kinds])
        images.append(ed.render(torch.stack([o.ws for o in out])))
        targets.append(np.stack([ed.targets(f, k[2])[0] for k in kinds]))
        sources.append(f.controls)
    images = np.stack(images)                       # (n, K, S, S, 3)
    targets = np.stack(targets)                     # (n, K, P)
    src = np.stack(sources)                         # (n, P)
    flat = images.reshape(n * K, *images.shape[2:])
    read = read_uint8(ed.labeler, flat).reshape(n, K, -1)
    src_images = ed.render(torch.stack([f.ws for f in faces]))
    kind_of = np.array([k[0] for k in kinds])
    val_of = [k[1] for k in kinds]
    deg = np.degrees
    idx = {name: space.index(name) for name in ("yaw", "pitch", "roll", "jaw_x")}

    dl = dl_src = None
    dfloor: dict = {}
    if dlib:
        from rig.instruments.dlib_reader import DlibReader, calibrate_on_world

        reader = DlibReader()
        dl = reader.read(flat)
        dl_src = reader.read(src_images)
        dfloor = calibrate_on_world(world_n, seed=0, reader=reader)
        rep.numbers["dlib_floor"] = dfloor

    def dlib_col(name: str) -> np.ndarray:
        return getattr(dl, name).reshape(n, K) if dl is not None else np.full((n, K), np.nan)

    enc_floor = cal.get("floor", {}) if cal else {}
    # ---- pose and jaw control
    for name, key, dkey in (("yaw", "yaw", "yaw"), ("pitch", "pitch", "pitch"), ("jaw", "jaw_x", "jaw")):
        cols = np.flatnonzero(kind_of == name)
        t = np.array([val_of[c] for c in cols], np.float64)[None].repeat(n, 0)
        r_enc = deg(read[:, cols, idx[key]])
        r_dl = dlib_col(dkey)[:, cols]
        err_enc = r_enc - t
        slope_dl = _slope(t.ravel(), r_dl.ravel())
        floor_slope = dfloor.get(f"{dkey}_slope", float("nan"))
        rep.numbers[name] = {"encoder_median_abs_err": float(np.median(np.abs(err_enc))),
                             "encoder_p90_abs_err": float(np.percentile(np.abs(err_enc), 90)),
                             "encoder_slope": _slope(t.ravel(), r_enc.ravel()),
                             "dlib_median_abs_err": float(np.nanmedian(np.abs(r_dl - t))) if dl is not None else None,
                             "dlib_slope": slope_dl, "dlib_floor_slope": floor_slope,
                             "dlib_slope_ratio": slope_dl / floor_slope if floor_slope else float("nan"),
                             "dlib_found": float(np.isfinite(r_dl).mean())}
        rng = f"{t.min():g}..{t.max():g}"
        rep.rows.append((f"{name} {rng} deg: |error| median / p90", _med_p90(err_enc), _med_p90(r_dl - t),
                         f"encoder {enc_floor.get(f'{dkey}_deg', float('nan')):.2f} deg median; "
                         f"dlib {dfloor.get(f'{dkey}_median_abs_err_deg', float('nan')):.2f} deg"))
        rep.rows.append((f"{name}: slope of reading on target", f"{rep.numbers[name]['encoder_slope']:.3f}",
                         f"{slope_dl:.3f} (x{rep.numbers[name]['dlib_slope_ratio']:.2f} of floor)",
                         f"encoder {enc_floor.get(f'{dkey}_slope', float('nan')):.3f}; dlib {floor_slope:.3f}"))
    # ---- presets and eyes
    world_ref = {}
    if cal:
        base = world_rows(48, 31)
        from rig.face_model import load_face_model
        from rig.world.priors import preset_table

        table = preset_table(load_face_model("default"))
        for p in presets:
            reading = read_uint8(ed.labeler, render_world_rows(with_preset(base, table[p])))
            world_ref[p] = float(np.median(along(reading, cal, p, space)))
        shares = {}
        for p in presets:
            c = np.flatnonzero((kind_of == "preset") & (np.array([str(v) for v in val_of]) == p))[0]
            got = float(np.median(along(read[:, c], cal, p, space)))
            shares[p] = got / world_ref[p] if world_ref[p] > 1e-6 else float("nan")
        rep.numbers["preset_share"] = shares
        rep.numbers["preset_world_reading"] = world_ref
        rep.rows.append(("presets at strength 1: reading / world renders'",
                         f"{min(shares.values()):.2f}..{max(shares.values()):.2f}", "n/a (not readable at 64 px)",
                         "1 by definition (world renders, fresh set)"))
        for p in presets:
            rep.rows.append((f"  {p}", f"{shares[p]:.2f}", "", f"world reads {world_ref[p]:.2f} of the calibration"))
        c = np.flatnonzero(kind_of == "eyes")[0]
        lids = [space.index("eyeBlinkLeft"), space.index("eyeBlinkRight")]
        neutral = np.asarray(cal["presets"]["neutral"])[lids]
        blink = np.asarray(cal["presets"]["blink"])[lids]
        closed = np.all(read[:, c, lids] > (neutral + blink) / 2, axis=1)
        was = np.all(src[:, lids] > (neutral + blink) / 2, axis=1)
        rep.numbers["eyes_closed_share"] = float(closed.mean())
        rep.rows.append(("--eyes closed: both lids read closed", f"{100 * closed.mean():.0f} % of faces "
                         f"({100 * was.mean():.0f} % before)", "n/a", "midpoint of neutral / blink renders"))
    # ---- drift of the groups not edited
    yaw_cols = np.flatnonzero(kind_of == "yaw")
    jaw_drift = deg(np.abs(read[:, yaw_cols, idx["jaw_x"]] - src[:, None, idx["jaw_x"]]))
    drift = {"yaw_edit_jaw_deg": float(np.median(jaw_drift))}
    if cal:
        expr_drift = [np.abs(along(read[:, yaw_cols].reshape(-1, read.shape[-1]), cal, p, space)
                             - np.repeat(along(src, cal, p, space), len(yaw_cols))) for p in presets]
        drift["yaw_edit_expression_share"] = float(np.median(np.max(np.stack(expr_drift), 0)))
        pcols = np.flatnonzero(kind_of == "preset")
        pose_drift = deg(np.abs(read[:, pcols][..., [idx["yaw"], idx["pitch"]]] - src[:, None, [idx["yaw"], idx["pitch"]]]))
        drift["preset_edit_yaw_deg"] = float(np.median(pose_drift[..., 0]))
        drift["preset_edit_pitch_deg"] = float(np.median(pose_drift[..., 1]))
    floor = _drift_floor(ed, presets) if cal else {}
    rep.numbers["drift"] = drift
    rep.numbers["drift_floor"] = floor
    rep.rows.append(("turns: jaw drift, median", f"{drift['yaw_edit_jaw_deg']:.2f} deg", "",
                     f"encoder on one head turned +-20: {floor['jaw_deg']:.2f} deg" if floor else ""))
    if cal:
        rep.rows.append(("turns: expression drift (largest preset share)", f"{drift['yaw_edit_expression_share']:.2f}", "",
                         f"encoder on one head turned +-20: {floor['expression_share']:.2f}"))
        rep.rows.append(("presets: yaw / pitch drift, median",
                         f"{drift['preset_edit_yaw_deg']:.2f} / {drift['preset_edit_pitch_deg']:.2f} deg", "", ""))
    # ---- identity
    ident = {}
    if dl is not None:
        from rig.instruments.dlib_reader import descriptor_distance, median_pairwise_distance

        d_edit = descriptor_distance(dl.descriptor, np.repeat(dl_src.descriptor, K, 0)).reshape(n, K)
        between = median_pairwise_distance(dl_src.descriptor)
        by_kind = {}
        yaw_val = np.array([v if k == "yaw" else np.nan for k, v in zip(kind_of, val_of)], np.float64)
        for t in (10.0, 20.0, 30.0):
            by_kind[f"turn +-{t:g}"] = d_edit[:, np.isin(yaw_val, [-t, t])]
        by_kind["presets"] = d_edit[:, kind_of == "preset"]
        by_kind["jaw"] = d_edit[:, kind_of == "jaw"]
        by_kind["pitch"] = d_edit[:, kind_of == "pitch"]
        evaluated = np.concatenate([by_kind["turn +-20"].ravel(), by_kind["presets"].ravel(),
                                    by_kind["jaw"][:, 1:].ravel()])  # the jaw's 0 deg target is no edit
        pose_share = _pose_share_of_identity(reader)
        preset_share = _preset_share_of_identity(reader)
        ident = {"between_seeds": between, "pose_share": pose_share, "preset_share": preset_share,
                 "edits_median": float(np.nanmedian(evaluated)),
                 **{k: float(np.nanmedian(v)) for k, v in by_kind.items()}}
        rep.numbers["identity"] = ident
        rep.rows.append(("identity: dlib distance G(w')-G(w), median", f"{ident['edits_median']:.3f} "
                         f"({ident['edits_median'] / between:.2f} of between-seeds)", "",
                         f"between seeds {between:.3f}"))
        for k, v in by_kind.items():
            turn = float(k.split("+-")[1]) if k.startswith("turn") else None
            rep.rows.append((f"  {k}", f"{np.nanmedian(v):.3f} ({np.nanmedian(v) / between:.2f})", "",
                             f"same head turned +-{turn:g}: {pose_share[turn]:.3f} ({pose_share[turn] / between:.2f})"
                             if turn else (f"same head, each preset: {preset_share:.3f} ({preset_share / between:.2f})"
                                           if k == "presets" else "")))
    # ---- verdicts (the bar)
    y = rep.numbers["yaw"]
    rep.verdicts.append((f"yaw median |error| {y['encoder_median_abs_err']:.2f} <= 3 deg (encoder)",
                         y["encoder_median_abs_err"] <= 3))
    if dl is not None:
        rep.verdicts.append((f"yaw dlib slope / its floor {y['dlib_slope_ratio']:.2f} in 0.8..1.2",
                             0.8 <= y["dlib_slope_ratio"] <= 1.2))
    for name in ("pitch", "jaw"):
        e = rep.numbers[name]["encoder_median_abs_err"]
        rep.verdicts.append((f"{name} median |error| {e:.2f} <= 3 deg (encoder)", e <= 3))
    if cal:
        worst = min(rep.numbers["preset_share"], key=rep.numbers["preset_share"].get)
        rep.verdicts.append((f"every preset >= 0.75 of the world's reading (lowest {worst} "
                             f"{rep.numbers['preset_share'][worst]:.2f})", rep.numbers["preset_share"][worst] >= 0.75))
        rep.verdicts.append((f"--eyes closed closes both eyes on {100 * rep.numbers['eyes_closed_share']:.0f} % >= 90 %",
                             rep.numbers["eyes_closed_share"] >= 0.9))
        rep.verdicts.append((f"turns drift the jaw {drift['yaw_edit_jaw_deg']:.2f} <= 2 deg and the expression "
                             f"{drift['yaw_edit_expression_share']:.2f} <= 0.25 of a preset (the encoder's own floor "
                             f"on a turned world head: {floor['expression_share']:.2f})",
                             drift["yaw_edit_jaw_deg"] <= 2 and drift["yaw_edit_expression_share"] <= 0.25))
        rep.verdicts.append((f"presets drift yaw / pitch {drift['preset_edit_yaw_deg']:.2f} / "
                             f"{drift['preset_edit_pitch_deg']:.2f} <= 2 deg",
                             max(drift["preset_edit_yaw_deg"], drift["preset_edit_pitch_deg"]) <= 2))
    if ident:
        rep.verdicts.append((f"identity: median edit distance {ident['edits_median']:.3f} <= half the between-seeds "
                             f"{ident['between_seeds']:.3f}", ident["edits_median"] <= 0.5 * ident["between_seeds"]))
    return rep


def ridge_direction(w: np.ndarray, y: np.ndarray, ridge: float = 1e-2) -> tuple[np.ndarray, float]:
    """Ridge regression of (N,) ``y`` on (N, w_dim) latents ``w`` (centred; penalty ``ridge x N``):
    the direction d (w_dim,) with y - mean ~ (w - mean) @ d, and the fit's correlation."""
    X = w - w.mean(0)
    d = np.linalg.solve(X.T @ X + ridge * len(X) * np.eye(X.shape[1]), X.T @ (y - y.mean()))
    return d, float(np.corrcoef(X @ d, y)[0, 1])


def linear_baseline(editor, labels_dir, n: int = 32, seed: int = 1000, turns=(-20.0, -10.0, 10.0, 20.0),
                    dlib: bool = True) -> dict:
    """The floor RigNet must beat: a ridge-regression yaw direction in W (fit on the unmixed latents of
    the label set against their yaw reading), applied to every W+ layer, beside RigNet's relative turn,
    on the same ``n`` sources. Returns per requested turn the mean change the encoder reads, and for
    +-20 deg the median dlib distance to the unedited face as a share of the between-seeds median."""
    from rig.rignet.calibration import read_uint8
    from rig.rignet.labels import LabelSet

    ed, space = editor, editor.space
    L = LabelSet.load(labels_dir, readable_only=True)
    d, fit_r = ridge_direction(L.ws[L.unmixed, 0].double().numpy(),
                               L.controls[L.unmixed, space.index("yaw")].double().numpy())
    # Sources turned less than 12 deg, so that +-20 deg more stays inside the generator's range.
    k = space.index("yaw")
    faces, s = [], seed
    while len(faces) < n and s < seed + 50 * n:
        f = ed.latent(s)
        if abs(math.degrees(ed.controls_of(f)[k])) < 12:
            faces.append(f)
        s += 1
    n = len(faces)
    src = np.stack([f.controls for f in faces])
    ws = torch.stack([f.ws for f in faces])
    out = {"fit_r": fit_r, "n": n, "turns": {}}
    images = {"source": ed.render(ws)}
    for turn in turns:
        step = math.radians(turn) / float(d @ d)
        lin = ws + torch.as_tensor(step * d, dtype=ws.dtype)[None, None]
        rig = torch.stack([ed.edit(f, yaw=turn).ws for f in faces])
        row = {}
        for name, moved in (("linear", lin), ("rignet", rig)):
            img = ed.render(moved)
            images[(name, turn)] = img
            row[name] = float(np.degrees(np.mean(read_uint8(ed.labeler, img)[:, k] - src[:, k])))
        out["turns"][turn] = row
    if dlib:
        from rig.instruments.dlib_reader import DlibReader, descriptor_distance, median_pairwise_distance

        reader = DlibReader()
        ref = reader.read(images["source"]).descriptor
        between = median_pairwise_distance(ref)
        for name in ("linear", "rignet"):
            dist = [descriptor_distance(reader.read(images[(name, t)]).descriptor, ref) for t in (-20.0, 20.0)
                    if (name, t) in images]
            out[f"{name}_identity_share_20"] = float(np.nanmedian(np.concatenate(dist))) / between
        out["between_seeds"] = between
    return out
