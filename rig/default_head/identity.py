"""Identity statistics of the default head: random MakeHuman characters -> mean + PCA basis.

A MakeHuman character is the base mesh plus a weighted sum of sparse displacement targets: the
*macro* targets (gender, age, muscle, weight, ethnicity, blended by MakeHuman's own piecewise-linear
rules) and *local* modifiers (head, nose, chin, cheek, ears, eyes, eyebrows, forehead, mouth, neck),
each a signed value choosing its ``-decr`` or ``-incr`` target. Every character is therefore
``base + w @ T`` for a weight vector ``w`` over a fixed target matrix ``T``.

We draw many weight vectors (seeded), so the covariance of the characters is
``T^T Cov(w) T``. Its principal directions are found without forming any per-character mesh:
with ``Cov(w) = L L^T``, the SVD of the small matrix ``L^T T`` gives them, and each principal
direction is itself a target-weight vector ``a_k = L p_k`` (so it can be evaluated on any vertex,
including the skeleton's joint cubes: the joints follow identity exactly).

All functions are pure numpy; sampling takes an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Modifiers that move or tilt the whole head / neck are posture, not identity; sideways
# translations ("trans-in-out") only make the face asymmetric.
EXCLUDED_MODIFIERS = (
    "head-trans-down-up", "head-trans-backward-forward", "head-trans-in-out", "head-angle-in-out",
    "nose-trans-in-out", "mouth-trans-in-out", "neck-trans-in-out", "neck-trans-backward-forward",
)
LOCAL_GROUPS = ("head", "nose", "chin", "cheek", "ears", "eyes", "eyebrows", "forehead", "mouth", "neck")
RACES = ("african", "asian", "caucasian")
GENDERS = ("female", "male")
AGES = ("child", "young", "old")
LEVELS_MUSCLE = ("minmuscle", "averagemuscle", "maxmuscle")
LEVELS_WEIGHT = ("minweight", "averageweight", "maxweight")


@dataclass(frozen=True)
class IdentitySampling:
    """How random characters are drawn (MakeHuman macro slider values lie in [0, 1]).

    Attributes:
        age_range: uniform range of MakeHuman's age slider (0.1875 = 11 y, 0.5 = 25 y, 1 = 90 y).
        muscle_range, weight_range: uniform ranges of the muscle / weight sliders.
        race_concentration: Dirichlet concentration of the (african, asian, caucasian) mix.
        local_sd: standard deviation of each local modifier value (clipped to [-1, 1]).
        asymmetry_sd: extra per-side noise added to left/right modifier pairs.
        n_samples: number of random characters used for the weight covariance.
    """

    age_range: tuple[float, float] = (0.35, 0.95)
    muscle_range: tuple[float, float] = (0.2, 0.85)
    weight_range: tuple[float, float] = (0.1, 0.9)
    race_concentration: float = 0.6
    local_sd: float = 0.3
    asymmetry_sd: float = 0.08
    n_samples: int = 20000


@dataclass(frozen=True)
class Modifier:
    """One local slider: a value v in [-1, 1] applies |v| of ``negative`` (v < 0) or ``positive``."""

    name: str
    negative: str  # target name ('' when the slider is one-sided)
    positive: str
    side: str  # 'l', 'r' or '' (unsided); sides of one slider share a base value


def local_modifiers(target_json: dict) -> list[Modifier]:
    """The local modifiers of ``LOCAL_GROUPS`` from MPFB2's ``targets/target.json``."""
    out: list[Modifier] = []
    for group in LOCAL_GROUPS:
        for cat in target_json[group]["categories"]:
            name = cat["name"]
            if name in EXCLUDED_MODIFIERS:
                continue
            opp = cat.get("opposites")
            if opp:
                if cat["has_left_and_right"]:
                    for side, word in (("l", "left"), ("r", "right")):
                        out.append(Modifier(name, opp[f"negative-{word}"], opp[f"positive-{word}"], side))
                else:
                    out.append(Modifier(name, opp["negative-unsided"], opp["positive-unsided"], ""))
            elif len(cat["targets"]) == 1:
                out.append(Modifier(name, "", cat["targets"][0], ""))
            else:  # e.g. eye-eyefold-concave-convex: l/r pairs listed without an 'opposites' table
                base = name.rsplit("-", 2)[0]
                neg_word, pos_word = name.rsplit("-", 2)[1:]
                for side in ("l", "r"):
                    out.append(Modifier(name, f"{side}-{base}-{neg_word}", f"{side}-{base}-{pos_word}", side))
    return out


def macro_target_names() -> list[str]:
    """File stems (under ``macrodetails/``) of every macro target the sampler can weight."""
    names = [f"universal-{g}-{a}-{m}-{w}" for g in GENDERS for a in AGES for m in LEVELS_MUSCLE for w in LEVELS_WEIGHT]
    names += [f"{r}-{g}-{a}" for r in RACES for g in GENDERS for a in AGES]
    return names


def _two_sided(value: np.ndarray, low: float, mid: float, high: float) -> np.ndarray:
    """MakeHuman's blend of (low, mid, high) levels for slider values in [0, 1]; (N, 3) weights."""
    v = np.clip(value, 0.0, 1.0)
    w = np.zeros(v.shape + (3,))
    lo = v < mid
    t_lo = np.where(lo, (v - low) / (mid - low), 0.0)
    t_hi = np.where(lo, 0.0, (v - mid) / (high - mid))
    w[..., 0] = np.where(lo, 1.0 - t_lo, 0.0)
    w[..., 1] = np.where(lo, t_lo, 1.0 - t_hi)
    w[..., 2] = np.where(lo, 0.0, t_hi)
    return w


def age_weights(age: np.ndarray) -> np.ndarray:
    """(N, 3) weights of the (child, young, old) targets for age sliders >= 0.1875 (11 years)."""
    return _two_sided(np.maximum(age, 0.1875), 0.1875, 0.5, 1.0)


def sample_target_weights(
    rng: np.random.Generator,
    modifiers: list[Modifier],
    target_index: dict[str, int],
    sampling: IdentitySampling,
) -> np.ndarray:
    """Draw ``sampling.n_samples`` random characters as (N, n_targets) float64 target weights."""
    n = sampling.n_samples
    W = np.zeros((n, len(target_index)))
    gender = rng.uniform(0.0, 1.0, n)
    age = rng.uniform(*sampling.age_range, n)
    muscle = rng.uniform(*sampling.muscle_range, n)
    weight = rng.uniform(*sampling.weight_range, n)
    race = rng.dirichlet([sampling.race_concentration] * len(RACES), n)
    g_w = np.stack([1.0 - gender, gender], axis=1)
    a_w = age_weights(age)
    m_w = _two_sided(muscle, 0.0, 0.5, 1.0)
    w_w = _two_sided(weight, 0.0, 0.5, 1.0)
    for gi, g in enumerate(GENDERS):
        for ai, a in enumerate(AGES):
            ga = g_w[:, gi] * a_w[:, ai]
            for mi, m in enumerate(LEVELS_MUSCLE):
                for wi, w in enumerate(LEVELS_WEIGHT):
                    W[:, target_index[f"universal-{g}-{a}-{m}-{w}"]] += ga * m_w[:, mi] * w_w[:, wi]
            for ri, r in enumerate(RACES):
                W[:, target_index[f"{r}-{g}-{a}"]] += race[:, ri] * ga
    shared: dict[str, np.ndarray] = {}
    for mod in modifiers:
        if mod.name not in shared:
            shared[mod.name] = rng.normal(0.0, sampling.local_sd, n)
        v = shared[mod.name]
        if mod.side:
            v = v + rng.normal(0.0, sampling.asymmetry_sd, n)
        if not mod.negative:  # one-sided shape targets (head-oval, chin-triangle ...)
            W[:, target_index[mod.positive]] += np.clip(np.abs(v), 0.0, 1.0)
            continue
        v = np.clip(v, -1.0, 1.0)
        W[:, target_index[mod.negative]] += np.maximum(-v, 0.0)
        W[:, target_index[mod.positive]] += np.maximum(v, 0.0)
    return W


@dataclass(frozen=True)
class IdentityPCA:
    """Principal directions of random characters, expressed as target-weight vectors.

    Attributes:
        mean_weights: (n_targets,) mean target weights (the template is ``base + mean @ T``).
        components: (K, n_targets) weight vectors; ``components[k] @ T`` is the k-th shape
            direction scaled to one standard deviation.
        std: (K,) standard deviation of each component in the units of ``T`` (root-sum-square
            over all coordinates used for the PCA).
        explained: (K,) fraction of the total variance explained by each component.
    """

    mean_weights: np.ndarray
    components: np.ndarray
    std: np.ndarray
    explained: np.ndarray


def identity_pca(W: np.ndarray, T: np.ndarray, n_components: int) -> IdentityPCA:
    """PCA of the characters ``W @ T`` computed in target-weight space.

    Args:
        W: (N, n_targets) float64 sampled target weights.
        T: (n_targets, D) float64 target displacements (flattened coordinates used for the PCA).
        n_components: K, how many leading components to keep.
    """
    mean = W.mean(axis=0)
    C = np.cov(W, rowvar=False, bias=True)
    evals, evecs = np.linalg.eigh(C)
    keep = evals > evals.max() * 1e-12
    L = evecs[:, keep] * np.sqrt(evals[keep])  # C = L L^T
    M = L.T @ T  # (r, D): M^T M is the coordinate covariance
    P, sig, _ = np.linalg.svd(M, full_matrices=False)
    if n_components > sig.size:
        raise ValueError(f"asked for {n_components} identity components, the data has rank {sig.size}")
    # sign convention: the largest-magnitude weight of each component is positive (deterministic)
    A = (L @ P[:, :n_components]).T
    flip = np.sign(A[np.arange(n_components), np.abs(A).argmax(axis=1)])
    A *= flip[:, None]
    total = float((sig**2).sum())
    return IdentityPCA(mean_weights=mean, components=A, std=sig[:n_components],
                       explained=sig[:n_components] ** 2 / total)
