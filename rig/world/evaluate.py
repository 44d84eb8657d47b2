"""Measuring a generator against the world it was trained on, with the face-parameter encoder.

* FRD: the Frechet distance between Gaussians fitted to the encoder's features of two image sets
  (the FID recipe with rig's encoder instead of Inception), reported beside the floor: FRD between
  two disjoint world samples of the same size.
* plausible-face rate: the encoder's face score is positive and all 68 predicted landmarks lie
  inside the image.
* spread: the standard deviation of the encoder's predicted yaw, pitch, jaw opening and each
  expression unit on generated images, against (a) the same encoder's reading of world images (the
  instrument-matched comparison: an encoder that sees a unit only faintly shrinks both sides alike)
  and (b) the world prior's ground-truth spread.
* named expressions: the same two spreads for the expression's projection on each preset's direction
  (``smile``, ``blink``, ...: the unit vector of the preset's expression coefficients), i.e. how far
  along "smile" the faces go; a projection averages the encoder's per-unit noise away, so presets are
  read far more sharply than single units.
* by face tone: the named-expression ratios again within light and within dark faces (the mean grey
  level of the image's central square below ``DARK_FACE_GREY``). The encoder reads eyes on dark faces
  less surely, and a generator trained against an encoder can learn that (docs/benchmarks.md,
  2026-11-30): a ratio that holds on one tone only is the instrument being gamed, not a face drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from rig.errors import InputError
from rig.instruments.encoder import EncoderOutput, FaceEncoder
from rig.instruments.encoder_train import predict


def frechet_from_moments(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) for Gaussians N(mu, C) (float64)."""
    from scipy import linalg

    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the FID reference does
        eps = np.eye(len(cov1)) * 1e-6
        covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to (N, F) and (M, F) feature sets."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InputError(f"frechet_distance: need two (N, F) feature sets with N >= 2, got {a.shape} and {b.shape}")
    return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def plausible_faces(out: EncoderOutput, image_size: int) -> torch.Tensor:
    """(B,) bool: face score > 0 and every predicted landmark inside [0, image_size)."""
    lmk = out.landmarks
    inside = ((lmk >= 0) & (lmk < image_size)).all(dim=-1).all(dim=-1)
    return inside & (out.face_logit > 0)


DARK_FACE_GREY = 80.0  # 20 % of the default world's faces fall below it
MIN_TONE_GROUP = 20  # fewer images than this on either side of a tone group: no ratio for it


def face_grey(images: torch.Tensor) -> np.ndarray:
    """(N,) mean grey level (0-255) of the central square (3/8 of the side) of uint8 images (N, C, S, S):
    in an aligned world crop, the face between brows and chin."""
    S = images.shape[-1]
    lo, hi = (5 * S) // 16, S - (5 * S) // 16
    return images[..., lo:hi, lo:hi].float().mean(dim=tuple(range(1, images.ndim))).numpy()


def preset_ratios_by_tone(gen_expression: np.ndarray, gen_grey: np.ndarray, world_expression: np.ndarray,
                          world_grey: np.ndarray, presets: dict[str, np.ndarray],
                          threshold: float = DARK_FACE_GREY) -> dict[str, tuple[float, float]]:
    """name -> (light, dark): ``spread_along_presets`` of the generated faces of that tone over the
    world's of that tone (both (N, E) expression readings, tones from ``face_grey``); NaN where either
    side has fewer than ``MIN_TONE_GROUP`` faces of the tone."""
    gen_e, world_e = np.asarray(gen_expression), np.asarray(world_expression)
    per_tone = []
    for gen_mask, world_mask in ((gen_grey >= threshold, world_grey >= threshold), (gen_grey < threshold, world_grey < threshold)):
        if min(gen_mask.sum(), world_mask.sum()) < MIN_TONE_GROUP:
            per_tone.append({})
            continue
        g, w = spread_along_presets(gen_e[gen_mask], presets), spread_along_presets(world_e[world_mask], presets)
        per_tone.append({k: g[k] / max(w[k], 1e-12) for k in g})
    return {k: tuple(tone.get(k, float("nan")) for tone in per_tone) for k in preset_directions(presets)}


def label_readings(generated: dict[str, np.ndarray], world_expression: np.ndarray, world_preset: np.ndarray,
                   preset_names: list[str], presets: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """How strongly a conditional generator draws each preset when given its label.

    generated: preset name -> (M, E) expressions the encoder read off images generated with that label.
    world_expression (N, E): the encoder's readings of world images; world_preset (N,): the index into
    ``preset_names`` each was drawn with (-1: none). Returns name -> (mean projection of the generated
    readings, of the world images of that preset) on ``preset_directions(presets)``; presets the world
    sample has no image of are left out."""
    directions = preset_directions(presets)
    out = {}
    for name, expr in generated.items():
        drawn = np.asarray(world_preset) == preset_names.index(name)
        if name in directions and drawn.any():
            d = directions[name]
            out[name] = (float((np.asarray(expr) @ d).mean()), float((np.asarray(world_expression)[drawn] @ d).mean()))
    return out


def _ratio(a: float, b: float) -> float:
    return a / max(b, 1e-12)


@dataclass(frozen=True)
class GeneratorReport:
    """What ``rig eval generator`` prints (see the module docstring). Spreads are std in radians or
    coefficient units, keyed ``yaw``, ``pitch``, ``jaw``, ``expr:<unit>``: ``spread_generated`` (encoder on
    generated images), ``spread_world_read`` (encoder on world images), ``spread_world`` (ground truth)."""

    n: int
    frd: float
    frd_floor: float
    plausible: float
    spread_generated: dict
    spread_world_read: dict
    spread_world: dict
    tone_ratios: dict = field(default_factory=dict)  # "preset:<name>" -> (light, dark), see preset_ratios_by_tone
    label_readings: dict = field(default_factory=dict)  # "preset:<name>" -> (generated, world), see label_readings

    def ratios(self, reference: str = "read") -> dict[str, float]:
        """generated / world std per key; ``reference`` 'read' (encoder on world images) or 'prior'."""
        ref = self.spread_world_read if reference == "read" else self.spread_world
        return {k: _ratio(self.spread_generated[k], ref[k]) for k in self.spread_world}

    def shortfalls(self, min_plausible: float = 0.95, tolerance: float = 0.25, reference: str = "read") -> list[str]:
        """What misses rig's quality bar for a default generator, one phrase each (empty = it passes):
        plausible faces >= ``min_plausible``, and the spread of yaw, pitch, jaw opening and every named
        expression within ``tolerance`` of the world's (``reference`` as in ``ratios``)."""
        misses = [] if self.plausible >= min_plausible else [f"plausible {100 * self.plausible:.1f} % < {100 * min_plausible:.0f} %"]
        ratios = self.ratios(reference)
        keys = ["yaw", "pitch", "jaw"] + [k for k in self.spread_world if k.startswith("preset:")]
        misses += [f"{k.removeprefix('preset:')} {ratios[k]:.2f}" for k in keys if abs(ratios[k] - 1) > tolerance + 1e-9]
        return misses

    def lines(self) -> list[str]:
        out = [f"samples: {self.n}",
               f"FRD(generated, world) = {self.frd:.3f}   floor FRD(world, world) = {self.frd_floor:.3f}",
               f"plausible faces: {100 * self.plausible:.1f} %"]
        read, prior = self.ratios("read"), self.ratios("prior")
        for key in ("yaw", "pitch", "jaw"):
            g, r, w = (np.degrees(d[key]) for d in (self.spread_generated, self.spread_world_read, self.spread_world))
            out.append(f"std {key}: generated {g:.2f} deg | world read by the encoder {r:.2f} deg (ratio {read[key]:.2f})"
                       f" | world prior {w:.2f} deg (ratio {prior[key]:.2f})")
        units = [k for k in self.spread_world if k.startswith("expr:")]
        if units:
            def summary(ratios: dict) -> str:
                vals = np.array([ratios[k] for k in units])
                return f"median {np.median(vals):.2f}, within 25 % for {100 * np.mean((vals >= 0.75) & (vals <= 1.25)):.0f} %"

            seen = np.median([_ratio(self.spread_world_read[k], self.spread_world[k]) for k in units])
            out.append(f"expression units ({len(units)}): std ratio vs world read by the encoder {summary(read)}; "
                       f"vs world prior {summary(prior)} (the encoder reads {100 * seen:.0f} % of the prior's spread on world images)")
            lowest = sorted(units, key=lambda k: read[k])[:6]
            out.append("  least drawn (vs world read by the encoder): " + ", ".join(f"{k[5:]} {read[k]:.2f}" for k in lowest))
        presets = [k for k in self.spread_world if k.startswith("preset:")]
        if presets:
            out.append(f"named expressions ({len(presets)}, spread along each preset's direction): std ratio vs world read by the encoder"
                       f" / vs world prior (the encoder's reading of the world / prior)")
            for k in presets:
                out.append(f"  {k[7:]:<11} {read[k]:.2f} / {prior[k]:.2f}   ({_ratio(self.spread_world_read[k], self.spread_world[k]):.2f})")
        if self.tone_ratios:
            out.append(f"named expressions by face tone (face-centre grey level >= / < {DARK_FACE_GREY:.0f}), "
                       "vs world read by the encoder, light / dark: "
                       + ", ".join(f"{k[7:]} {a:.2f} / {b:.2f}" for k, (a, b) in self.tone_ratios.items()))
            split = [k[7:] for k, (a, b) in self.tone_ratios.items() if abs(a - b) > 0.5]
            if split:
                out.append(f"  light and dark faces differ by more than 0.5 for {', '.join(split)}: "
                           "look at presets.png before trusting those spreads")
        if self.label_readings:
            out.append("labels of the conditional generator: mean reading along each preset, generated with that label / "
                       "world images drawn with it: " + ", ".join(f"{k[7:]} {g:.2f} / {w:.2f}"
                                                                 for k, (g, w) in self.label_readings.items()))
        for reference, label in (("read", "the world read by the encoder"), ("prior", "the world prior")):
            misses = self.shortfalls(reference=reference)
            verdict = "met" if not misses else "missed: " + ", ".join(misses)
            out.append(f"quality bar (plausible >= 95 %; yaw, pitch, jaw, named expressions within 25 % of {label}): {verdict}")
        return out


def preset_directions(presets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """name -> unit vector (E,) float64 of each preset's expression coefficients, sorted by name;
    presets with no expression coefficients (norm < 1e-6, e.g. a pure jaw opening) are left out."""
    out = {}
    for name, vec in sorted(presets.items()):
        direction = np.asarray(vec, np.float64).reshape(-1)
        norm = np.linalg.norm(direction)
        if norm >= 1e-6:
            out[name] = direction / norm
    return out


def spread_along_presets(expressions: np.ndarray, presets: dict[str, np.ndarray]) -> dict[str, float]:
    """name -> std of (N, E) ``expressions`` projected on each of ``preset_directions(presets)``."""
    e = np.asarray(expressions, np.float64)
    out = {}
    for name, direction in preset_directions(presets).items():
        if direction.shape[0] != e.shape[1]:
            raise InputError(f"preset {name!r} has {direction.shape[0]} expression coefficients, the expressions have {e.shape[1]}")
        out[name] = float((e @ direction).std())
    return out


@torch.no_grad()
def generate_float(G, n: int, seed: int, batch: int = 32, truncation_psi: float = 1.0,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """(n, 3, S, S) float images in [-1, 1] of ``G`` for z drawn from ``seed`` (constant noise). A
    conditional G gets ``labels`` (n, c_dim) one-hot, or by default labels drawn after the latents by
    its class prior (``sample_labels``)."""
    from rig.stylegan2.generate import sample_labels

    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((n, G.z_dim), generator=gen)
    c = sample_labels(G, n, gen) if labels is None else labels
    return torch.cat([G(z[i:i + batch], None if c is None else c[i:i + batch], truncation_psi=truncation_psi,
                        noise_mode="const") for i in range(0, n, batch)])


def generate_uint8(G, n: int, seed: int, batch: int = 32, truncation_psi: float = 1.0,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """``generate_float`` quantised as PNGs are: (n, 3, S, S) uint8."""
    from rig.stylegan2.generate import to_uint8_nhwc

    images = generate_float(G, n, seed, batch, truncation_psi, labels)
    return torch.from_numpy(to_uint8_nhwc(images)).permute(0, 3, 1, 2)


class Readings(NamedTuple):
    """The encoder's outputs on ``n`` generated images and on two disjoint sets of ``n`` world images.

    fake: (n, 3, S, S) uint8 generated images. generated / world / world_floor: ``EncoderOutput`` on
    ``fake``, on world images [0, n) and on world images [n, 2n) (the floor's second set).
    fake_grey / world_grey: (n,) ``face_grey`` of ``fake`` and of world images [0, n).
    """

    fake: torch.Tensor
    generated: EncoderOutput
    world: EncoderOutput
    world_floor: EncoderOutput
    fake_grey: np.ndarray
    world_grey: np.ndarray


def read_generator_and_world(G, encoder: FaceEncoder, world_images: torch.Tensor, n: int, seed: int = 0) -> Readings:
    """Draw ``n`` samples of ``G`` (z from ``seed``, psi 1, constant noise) and run ``encoder`` on them
    and on the first 2n of ``world_images`` (uint8 (N, 3, S, S), N >= 2n)."""
    if len(world_images) < 2 * n:
        raise InputError(f"evaluation needs at least {2 * n} world images for n={n} (floor uses two disjoint sets), got {len(world_images)}")
    fake = generate_uint8(G, n, seed)
    if fake.shape[2] != world_images.shape[2]:
        raise InputError(f"generator draws {fake.shape[2]} px images, the world dataset is {world_images.shape[2]} px")
    return Readings(fake, predict(encoder, fake), predict(encoder, world_images[:n]), predict(encoder, world_images[n:2 * n]),
                    face_grey(fake), face_grey(world_images[:n]))


def report_from_readings(readings: Readings, world_params: dict, expression_names: tuple[str, ...] = (),
                         preset_expressions: dict[str, np.ndarray] | None = None) -> GeneratorReport:
    """The ``GeneratorReport`` of ``readings``; the prior's spreads come from all rows of ``world_params``.

    preset_expressions: name -> (E,) expression coefficients of a named preset; adds ``preset:<name>``
    spreads along each (normalised) direction. Presets without expression coefficients are skipped.
    """
    out_fake, out_a, out_b = readings.generated, readings.world, readings.world_floor
    S = readings.fake.shape[2]
    frd = frechet_distance(out_fake.features.numpy(), out_a.features.numpy())
    floor = frechet_distance(out_b.features.numpy(), out_a.features.numpy())
    plausible = float(plausible_faces(out_fake, S).float().mean())
    gen_spread, read_spread = (
        {"yaw": float(o.head_ypr[:, 0].std()), "pitch": float(o.head_ypr[:, 1].std()), "jaw": float(o.jaw_pose[:, 0].std())}
        for o in (out_fake, out_a))
    ypr, jaw = np.asarray(world_params["head_ypr"]), np.asarray(world_params["jaw_pose"])
    world_spread = {"yaw": float(ypr[:, 0].std()), "pitch": float(ypr[:, 1].std()), "jaw": float(jaw[:, 0].std())}
    expr = np.asarray(world_params["expression"])
    names = expression_names or tuple(f"{i}" for i in range(expr.shape[1]))
    for i, name in enumerate(names):
        if expr[:, i].std() > 0:  # units the world never moves (gaze, jawOpen) have no spread to match
            world_spread[f"expr:{name}"] = float(expr[:, i].std())
            gen_spread[f"expr:{name}"] = float(out_fake.expression[:, i].std())
            read_spread[f"expr:{name}"] = float(out_a.expression[:, i].std())
    presets = preset_expressions or {}
    for spread, e in ((world_spread, expr), (gen_spread, out_fake.expression.numpy()), (read_spread, out_a.expression.numpy())):
        spread.update({f"preset:{k}": v for k, v in spread_along_presets(e, presets).items()})
    by_tone = preset_ratios_by_tone(out_fake.expression.numpy(), readings.fake_grey, out_a.expression.numpy(),
                                    readings.world_grey, presets)
    tones = {f"preset:{k}": v for k, v in by_tone.items() if not any(np.isnan(v))}
    return GeneratorReport(len(readings.fake), frd, floor, plausible, gen_spread, read_spread, world_spread, tones)
