"""``TrainConfig``: every setting of a StyleGAN2 training run, and the named presets.

The numbers follow the StyleGAN2 paper's config-F recipe scaled down for a CPU: non-saturating
logistic loss, lazy R1 every 16 D steps, optional path-length regularisation every 4 G steps,
style mixing, an EMA of G, Adam(betas 0, 0.99). Presets trade network width for kimg/h.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rig.errors import InputError
from rig.stylegan2.training.local_d import LocalRegion


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one generator training run (network shape, optimisation, schedule).

    Network:
        resolution: output image side in pixels (a power of two >= 8), must match the dataset.
        z_dim, w_dim: latent sizes. mapping_layers: depth of the mapping MLP.
        channel_base, channel_max: feature maps per resolution = min(channel_base // res, channel_max).
        mbstd_group: minibatch-stddev group size of D (must divide batch).
    Optimisation:
        batch: images per step. g_lr, d_lr: Adam learning rates before the lazy-reg correction.
        betas: Adam betas before the lazy-reg correction. r1_gamma: R1 weight (gamma in R1 * gamma/2).
        r1_interval: D regulariser runs every this many steps (lazy R1).
        pl_weight: path-length weight (0 turns it off); pl_interval, pl_batch_shrink, pl_decay as StyleGAN2.
        style_mixing: probability of mixing two latents in a G forward pass.
        ema_kimg: half-life of the G EMA in kimg; ema_rampup: ramp the half-life with training progress
            (ema_nimg = min(ema_kimg*1000, cur_nimg*ema_rampup)); None turns the ramp off.
        xflip: also train on mirrored dataset images (doubles the dataset).
        g_freeze_kimg: G and G_ema stay fixed for this many kimg at the start of the run while D alone
            trains (for starting from a generator file that has no D: a fresh D first learns to tell
            the file's fakes from reals, so G is not steered by a random critic).
    Reading critic (``reading_d``):
        reader: a frozen network whose readings of real and generated images a second, small critic
            tells apart, so G is also pushed to draw what the pixel D lets it drop (rig's face encoder:
            a file from ``rig train encoder`` or 'default'); '' turns it off. Stored so a resumed run
            loads the same reader again.
        reader_weight: weight of the reading critic's non-saturating loss in G's loss.
        reader_r1_gamma: R1 weight of the reading critic (on the real readings, as lazy as D's R1).
    Local critics (``local_d``):
        local_critics: (LocalRegion, ...): one more StyleGAN2 D per region, judging only that square
            crop of the real and generated batches (e.g. the eye band of aligned faces), with D's
            learning rate, R1 gamma and interval.
        local_weight: weight of each local critic's non-saturating loss in G's loss.
    Conditioning:
        class_names: one name per class of a class-conditional run (G and D get a one-hot label, c_dim
            = len(class_names), as in stylegan2-ada-pytorch's --cond); () trains an unconditional G.
            ``rig train generator --cond preset`` uses the world's named expression presets plus 'none'.
        class_prior: how often each class occurs in the data the run models (before any
            preset_repeat), stored with the network so sampling can draw labels as the data has them.
        label_mismatch: with labels, D's loss also scores each real image under a wrong label (drawn
            uniformly from the other classes) as fake, with this weight: a matching-aware D (Reed et
            al. 2016). Without it, D learns what a label looks like only from the fakes drawn with it;
            0 turns it off.
    Data:
        preset_repeat: ((preset name, k), ...): a dataset image drawn from that named expression preset
            is shown k times per epoch instead of once (k >= 1), to show a generator rare expressions
            more often. Needs a world dataset with a 'preset' parameter.
    Schedule:
        kimg: train until this many thousand real images were shown to D.
        snapshot_kimg: snapshot (weights, optimisers, RNG) every this many kimg.
        snapshot_minutes: also snapshot when this much wall-clock time passed since the last one
            (None = only by kimg), so a killed session loses at most that much.
        log_kimg: one loss-history entry per this many kimg.
        keep_snapshots: how many snapshots to keep on disk (oldest deleted first).
        grid_size: samples in the periodic PNG grid (a square number).
        seed: seeds every random stream of the run (data order, latents, noise).
        threads: torch intra-op threads (None = leave torch's setting).
    """

    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    channel_base: int = 2048
    channel_max: int = 128
    mbstd_group: int = 4

    batch: int = 16
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 0.05
    r1_interval: int = 16
    pl_weight: float = 0.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: float = 5.0
    ema_rampup: float | None = 0.05
    xflip: bool = True
    g_freeze_kimg: float = 0.0
    preset_repeat: tuple[tuple[str, int], ...] = ()
    reader: str = ""
    reader_weight: float = 1.0
    reader_r1_gamma: float = 1.0
    local_critics: tuple[LocalRegion, ...] = ()
    local_weight: float = 1.0
    class_names: tuple[str, ...] = ()
    class_prior: tuple[float, ...] = ()
    label_mismatch: float = 0.0

    kimg: float = 2000.0
    snapshot_kimg: float = 10.0
    snapshot_minutes: float | None = 10.0
    log_kimg: float = 1.0
    keep_snapshots: int = 3
    grid_size: int = 16
    seed: int = 0
    threads: int | None = None

    def validate(self) -> "TrainConfig":
        """Raise ``InputError`` on settings that cannot train; return self."""
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise InputError(f"train config: resolution {r} is not a power of two >= 8")
        if self.batch < 1 or self.batch % max(1, min(self.mbstd_group, self.batch)):
            raise InputError(f"train config: batch {self.batch} is not a multiple of mbstd_group {self.mbstd_group}")
        if self.r1_interval < 1 or self.pl_interval < 1:
            raise InputError("train config: regularisation intervals must be >= 1")
        if self.snapshot_kimg <= 0 or self.log_kimg <= 0 or self.kimg <= 0:
            raise InputError("train config: kimg, snapshot_kimg and log_kimg must be positive")
        if not (self.g_lr > 0 and self.d_lr > 0):
            raise InputError("train config: g_lr and d_lr must be positive")
        if self.reader_weight < 0 or self.reader_r1_gamma < 0:
            raise InputError("train config: reader_weight and reader_r1_gamma must be >= 0")
        if len(self.class_names) == 1 or len(set(self.class_names)) != len(self.class_names):
            raise InputError(f"train config: class_names {list(self.class_names)} must be empty or >= 2 distinct names")
        if self.class_prior and (len(self.class_prior) != len(self.class_names) or min(self.class_prior) < 0
                                 or abs(sum(self.class_prior) - 1) > 1e-6):
            raise InputError("train config: class_prior must give one frequency >= 0 per class, summing to 1")
        if self.label_mismatch < 0 or (self.label_mismatch > 0 and not self.class_names):
            raise InputError("train config: label_mismatch must be >= 0, and > 0 only for a run with labels (--cond)")
        if self.local_weight < 0:
            raise InputError("train config: local_weight must be >= 0")
        for region in self.local_critics:
            region.check(r)
        names = [region.name for region in self.local_critics]
        if len(set(names)) != len(names):
            raise InputError(f"train config: local critic names repeat ({', '.join(names)})")
        if self.g_freeze_kimg < 0:
            raise InputError("train config: g_freeze_kimg must be >= 0")
        for item in self.preset_repeat:
            if len(item) != 2 or not isinstance(item[0], str) or int(item[1]) != item[1] or item[1] < 1:
                raise InputError(f"train config: preset_repeat entry {item!r} is not (preset name, whole number >= 1)")
        if self.keep_snapshots < 1:
            raise InputError("train config: keep_snapshots must be >= 1")
        n = int(round(self.grid_size ** 0.5))
        if n * n != self.grid_size:
            raise InputError(f"train config: grid_size {self.grid_size} is not a square number")
        return self

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (unknown names raise ``InputError``)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InputError(f"train config: unknown setting(s) {', '.join(unknown)}")
        return dataclasses.replace(self, **changes).validate()

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        if "preset_repeat" in d:
            d["preset_repeat"] = tuple((str(name), int(k)) for name, k in d["preset_repeat"])
        for key, kind in (("class_names", str), ("class_prior", float)):
            if key in d:
                d[key] = tuple(kind(v) for v in d[key])
        if "local_critics" in d:
            d["local_critics"] = tuple(LocalRegion(**region) for region in d["local_critics"])
        return cls(**d).validate()


# Presets. 'tiny' exists for tests (seconds per kimg). '64' is the default-world recipe: channels
# 128/128/128/64/32 at 4..64 px (~0.6 M parameters in G); a 4096-base variant (1.4 M) measured 2.5 kimg/h
# against 18 kimg/h for the 0.35 M NOTES.md config on this shared 2-core machine, too slow for CPU
# sessions. '128' is the width NOTES.md measured at ~3.9 kimg/h alone on the machine.
PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256,
                        channel_max=16, batch=4, mbstd_group=2, kimg=0.064, snapshot_kimg=0.016,
                        snapshot_minutes=None, log_kimg=0.008, r1_interval=4, pl_interval=2, ema_kimg=0.01,
                        grid_size=4),
    "64": TrainConfig(),
    "128": TrainConfig(resolution=128, z_dim=256, w_dim=256, channel_base=8192, channel_max=256,
                       r1_gamma=0.2, batch=16, ema_kimg=5.0),
}


def preset(name: str, **changes) -> TrainConfig:
    """The preset ``name`` ('tiny', '64', '128') with ``changes`` applied."""
    if name not in PRESETS:
        raise InputError(f"unknown training preset '{name}' (choose from {', '.join(PRESETS)})")
    return PRESETS[name].replace(**changes) if changes else PRESETS[name].validate()
