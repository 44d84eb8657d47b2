"""The StyleGAN2 training loop: ``Trainer`` owns G, D, G_ema, the optimisers and the random streams.

One step (``batch`` real images shown to D) runs the phases of StyleGAN2's lazy-regularised recipe:

* G main: non-saturating logistic loss on a fresh batch of fakes (with style mixing).
* G reg (every ``pl_interval`` steps, if ``pl_weight`` > 0): path-length penalty, scaled by the interval.
* D main: logistic loss on fakes and the real batch.
* D reg (every ``r1_interval`` steps): R1 penalty on the real batch, scaled by the interval.

With a reader (``TrainConfig.reader``; see ``reading_d``) a second critic, ``D_read``, judges the
frozen reader's readings of the same real and fake batches: G's loss adds ``reader_weight`` times
its non-saturating loss, and D_read gets its own logistic loss, lazy R1 and Adam.

Each local critic (``TrainConfig.local_critics``; see ``local_d``) is one more D that sees only a fixed
square crop of the same real and fake batches; G's loss adds ``local_weight`` times its
non-saturating loss. All critics share one step (``_train_critic``): logistic loss, then lazy R1.
With ``label_mismatch`` > 0, D's logistic loss also counts the real batch under wrong labels as fakes.

Adam's learning rate and betas of a lazily regularised network are corrected by
``interval / (interval + 1)`` as in the StyleGAN2 paper (appendix B). G_ema follows G after every step.

Every random draw comes from explicit ``torch.Generator`` streams seeded from ``TrainConfig.seed``
(latents and mixing choices; the synthesis network's per-pixel noise) and saved in snapshots; with the
data order saved as (epoch, position), a run resumed from a snapshot continues bit-exactly as the
uninterrupted run would have. torch's global generator is never drawn from.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from rig.errors import CheckpointError, InputError
from rig.io.atomic import write_text_atomic
from rig.stylegan2.training import loss as L
from rig.stylegan2.training.config import TrainConfig
from rig.stylegan2.training.data import ImageStream, mirrored_classes
from rig.stylegan2.training.ema import ema_beta, update_ema
from rig.stylegan2.training.reading_d import ReadingDiscriminator, read_images
from rig.stylegan2.training.report import save_grid, save_loss_plot
from rig.io.torch_snapshot import check_tensor, snapshot_float, snapshot_int
from rig.stylegan2.training.snapshot import (
    Snapshot,
    config_from_snapshot,
    latest_snapshot,
    pack_module,
    pack_optimizer,
    read_snapshot,
    unpack_module,
    unpack_optimizer,
    write_snapshot,
)

NetworkBuilder = Callable[[TrainConfig, int], "tuple[torch.nn.Module, torch.nn.Module]"]


def build_networks(cfg: TrainConfig, img_channels: int = 3) -> tuple[torch.nn.Module, torch.nn.Module]:
    """rig's StyleGAN2 G and D for ``cfg`` (class-conditional when ``cfg.class_names`` is set; fp32
    everywhere, no conv clamp)."""
    from rig.stylegan2.networks import Generator, GeneratorConfig, MappingConfig, SynthesisConfig

    G = Generator(GeneratorConfig(
        z_dim=cfg.z_dim, c_dim=len(cfg.class_names), w_dim=cfg.w_dim, img_resolution=cfg.resolution,
        img_channels=img_channels,
        mapping=MappingConfig(num_layers=cfg.mapping_layers),
        synthesis=SynthesisConfig(channel_base=cfg.channel_base, channel_max=cfg.channel_max)))
    return G, build_discriminator(cfg, cfg.resolution, img_channels)


def build_discriminator(cfg: TrainConfig, resolution: int, img_channels: int = 3) -> torch.nn.Module:
    """rig's StyleGAN2 D of ``cfg``'s width (and labels) for ``resolution`` px images (also the local critics')."""
    from rig.stylegan2.config import EpilogueConfig
    from rig.stylegan2.networks import Discriminator, DiscriminatorConfig

    return Discriminator(DiscriminatorConfig(
        c_dim=len(cfg.class_names), img_resolution=resolution, img_channels=img_channels, channel_base=cfg.channel_base,
        channel_max=cfg.channel_max, epilogue=EpilogueConfig(mbstd_group_size=cfg.mbstd_group)))


LIFT_LABEL_SCALE = 0.5


@torch.no_grad()
def lift_to_conditional(target: torch.nn.Module, source: torch.nn.Module, label_scale: float = LIFT_LABEL_SCALE) -> None:
    """Load an unconditional G or D ``source`` into its class-conditional twin ``target``.

    Every tensor of the same name and shape is copied. G's first mapping layer takes [z, embed(c)]
    instead of z: its z columns get the source's weights, rescaled for the equalised learning rate's
    1/sqrt(fan-in) gain, so the z part of every w is the source's; its label columns keep their fresh
    weights times ``label_scale``, which gives each class a fixed offset in W whose variance is
    ``label_scale``^2 of z's. With 0 the lifted G draws exactly what the source drew, but it cannot
    learn to use the label: the mapping's learning rate is 1/100 of the synthesis's (StyleGAN's
    lr_multiplier), and zero label weights grew by nothing visible in 13 kimg of rig's fine-tune,
    while a fixed offset is something the synthesis network learns to read at its own pace.
    The label embedding, D's label mapping and D's output projection (its output width changes) keep
    their fresh weights. Raises RuntimeError when a shared tensor's shape differs for any other
    reason (another architecture).
    """
    src = source.state_dict()
    own = target.state_dict()
    for key, value in own.items():
        if key not in src:
            continue
        if src[key].shape == value.shape:
            value.copy_(src[key])
        elif key.endswith("mapping.fc0.weight") and hasattr(target, "z_dim") and src[key].shape[1] == target.z_dim:
            fan_in_ratio = value.shape[1] / src[key].shape[1]
            value[:, target.z_dim:] *= label_scale
            value[:, :target.z_dim] = src[key] * fan_in_ratio ** 0.5
        elif not (key.startswith("b4.out.") and getattr(target, "c_dim", 0) > 0):  # a conditional D's projection
            raise RuntimeError(f"{key}: shape {tuple(src[key].shape)} in the file, {tuple(value.shape)} in the config")


RELABEL_LABEL_SCALE = 1.0  # on rig's default: the refined classes' images then differ from 'none' by 0.06 (mean |dx|)


@torch.no_grad()
def relabel_conditional(target: torch.nn.Module, source: torch.nn.Module, target_names: tuple[str, ...],
                        source_names: tuple[str, ...], label_scale: float = RELABEL_LABEL_SCALE) -> None:
    """Load a class-conditional G or D ``source`` (classes ``source_names``) into ``target``, whose classes
    ``target_names`` keep or refine them (``--cond preset+state`` after ``--cond preset``).

    Every tensor is copied, except that the label embedding's column of each target class is the one
    of the source class of the same name, else of its parent: the name before the first '+'
    ('none+eyes_closed' -> 'none'), rescaled for the equalised learning rate's 1/sqrt(fan-in) gain.
    A refined class's column also adds ``target``'s own fresh column times ``label_scale``: a fixed
    offset from its parent, like the one ``lift_to_conditional`` gives each new class. The mapping
    network learns at 1/100 of the synthesis's rate, and refined classes that started as exact copies
    of 'none' were still drawn as 'none' after 10 kimg of rig's fine-tune. With ``label_scale`` 0 the
    target draws (and D scores) a refined class exactly as the source did its parent. Raises InputError
    for a class with neither, RuntimeError for a tensor of another shape (another architecture).
    """
    columns = []
    for name in target_names:
        parent = name if name in source_names else name.split("+")[0]
        if parent not in source_names:
            raise InputError(f"class {name!r} is not one of the file's classes ({', '.join(source_names)}), "
                             "nor a refinement 'CLASS+...' of one")
        columns.append(source_names.index(parent))
    refined = torch.tensor([name not in source_names for name in target_names])
    src = source.state_dict()
    fan_in_ratio = len(target_names) / len(source_names)  # the equalised learning rate's gain is 1/sqrt(c_dim)
    for key, value in target.state_dict().items():
        given = src.get(key)
        if given is not None and key.endswith("mapping.embed.weight"):
            given = given[:, columns] * fan_in_ratio ** 0.5 + value * refined * label_scale
        if given is None or given.shape != value.shape:
            raise RuntimeError(f"{key}: shape {None if given is None else tuple(given.shape)} in the file, "
                               f"{tuple(value.shape)} in the config")
        value.copy_(given)


def _lazy_adam(params, lr: float, betas: tuple[float, float], interval: int | None) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction (none when ``interval`` is None)."""
    if interval is not None:
        ratio = interval / (interval + 1)
        lr = lr * ratio
        betas = (betas[0] ** ratio, betas[1] ** ratio)
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=1e-8)


@dataclass
class _LossMeter:
    """Running sums of the logged quantities between two history entries."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, value: torch.Tensor) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.counts[key] = self.counts.get(key, 0) + 1

    def flush(self) -> dict[str, float]:
        out = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums.clear()
        self.counts.clear()
        return out


class Trainer:
    """A resumable StyleGAN2 training run in ``run_dir`` on ``images`` (N, C, S, S) uint8.

    Use ``Trainer.start(cfg, images, run_dir)`` for a new run or ``Trainer.resume(run_dir, images)``
    to continue from the newest snapshot, then ``trainer.train()``. Files written into ``run_dir``:
    ``snapshots/`` (resumable state), ``network-latest.safetensors`` (G_ema, G, D in rig's network
    format), ``grids/grid-<nimg>.png`` (fixed-latent samples of G_ema),
    ``reals.png``, ``loss.png``, ``config.json``.

    reader: the frozen network ``cfg.reader`` names (the caller loads it; None when ``cfg.reader`` is
    empty), see ``reading_d``. It is never trained and never saved in snapshots.
    labels: (N,) int64 class of each image, for a class-conditional config (``cfg.class_names``);
    fakes get the labels of uniformly drawn dataset images, as in stylegan2-ada-pytorch.
    """

    def __init__(self, cfg: TrainConfig, images: torch.Tensor, run_dir: str | os.PathLike,
                 builder: NetworkBuilder = build_networks, progress: bool = True, reader: torch.nn.Module | None = None,
                 labels: torch.Tensor | None = None):
        cfg.validate()
        c_dim = len(cfg.class_names)
        if (labels is not None) != (c_dim > 0):
            raise InputError(f"train config has {c_dim} classes but the trainer was given "
                             f"{'no labels' if labels is None else 'labels'}")
        if labels is not None and (labels.shape != (len(images),) or int(labels.min()) < 0
                                   or int(labels.max()) >= c_dim):
            raise InputError(f"labels must be ({len(images)},) class indices in 0..{c_dim - 1}")
        if images.ndim != 4 or images.shape[2] != cfg.resolution or images.shape[3] != cfg.resolution:
            raise InputError(f"training images are {tuple(images.shape)}, config wants (N, C, {cfg.resolution}, {cfg.resolution})")
        if bool(cfg.reader) != (reader is not None):
            raise InputError(f"train config names reader {cfg.reader!r} but the trainer was given "
                             f"{'no reader' if reader is None else 'one'}")
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        # The reading critic's input standardisation: the readings of (up to) the first 512 dataset images.
        real_readings = None if reader is None else read_images(reader, images[:512])
        # The initial weights are a function of the run's seed alone (and the caller's RNG is left alone).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.G, self.D = builder(cfg, images.shape[1])
            self.reader = reader
            self.D_read = None if reader is None else ReadingDiscriminator(real_readings.shape[-1])
            # Built last, so a run's G, D (and D_read) start the same with or without local critics.
            self.D_local = {region.name: build_discriminator(cfg, region.pixels(cfg.resolution)[2], images.shape[1])
                            for region in cfg.local_critics}
        self.G.train().requires_grad_(False)
        self.D.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.stream = ImageStream(images, seed=cfg.seed, xflip=cfg.xflip)
        self.latent_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise_gen = torch.Generator().manual_seed(cfg.seed + 3)
        self.grid_z = torch.randn((cfg.grid_size, cfg.z_dim), generator=torch.Generator().manual_seed(cfg.seed + 2))
        self.labels = labels
        # A mirrored image's class: its own, or its left-right twin's (``mirrored_classes``).
        self.mirror_class = mirrored_classes(cfg.class_names) if c_dim and cfg.xflip else None
        self.grid_c = self._one_hot(torch.arange(cfg.grid_size) % c_dim) if c_dim else None  # every class in turn
        pl = cfg.pl_weight > 0
        self.opt_G = _lazy_adam(self.G.parameters(), cfg.g_lr, cfg.betas, cfg.pl_interval if pl else None)
        self.opt_D = _lazy_adam(self.D.parameters(), cfg.d_lr, cfg.betas, cfg.r1_interval)
        if self.D_read is not None:
            self.D_read.fit_input(real_readings)
            self.D_read.train().requires_grad_(False)
            self.opt_D_read = _lazy_adam(self.D_read.parameters(), cfg.d_lr, cfg.betas, cfg.r1_interval)
        self.opt_D_local = {}
        for name, critic in self.D_local.items():
            critic.train().requires_grad_(False)
            self.opt_D_local[name] = _lazy_adam(critic.parameters(), cfg.d_lr, cfg.betas, cfg.r1_interval)
        self.pl_mean = torch.zeros([])
        self.nimg = 0
        self.step = 0
        self.history: list[dict] = []
        self.wall_seconds = 0.0
        self._meter = _LossMeter()

    # ------------------------------------------------------------------ construction

    @classmethod
    def start(cls, cfg: TrainConfig, images: torch.Tensor, run_dir: str | os.PathLike, init=None, **kw) -> "Trainer":
        """A fresh run; refuses a ``run_dir`` that already holds snapshots (resume it instead).

        init: a ``rig.stylegan2.checkpoints.NetworkSet`` to start from instead of random weights
        (fine-tuning, like NVIDIA's ``--resume=PKL``): G from its ``G`` (else ``G_ema``), G_ema from its
        ``G_ema`` (else ``G``), D from its ``D`` where it has one (else D starts fresh). The networks
        must have the architecture ``cfg`` builds. Optimiser state, schedule and kimg start from zero.
        An unconditional file can start a class-conditional run (``lift_to_conditional``), and a
        conditional file of rig's one whose classes refine the file's (``relabel_conditional``).
        """
        if latest_snapshot(run_dir) is not None:
            raise InputError(f"{run_dir}: already holds a training run; resume it or choose another folder")
        trainer = cls(cfg, images, run_dir, **kw)
        if init is not None:
            trainer._init_weights(init)
        return trainer

    def _init_weights(self, nets) -> None:
        g, g_ema = nets.G or nets.G_ema, nets.G_ema or nets.G
        if g is None:
            raise InputError(f"{nets.source}: holds no generator to start training from")
        source_names = tuple((nets.labels or {}).get("class_names", ()))  # a conditional file of rig's
        for name, target, source in (("G", self.G, g), ("G_ema", self.G_ema, g_ema), ("D", self.D, nets.D)):
            if source is None:
                continue
            try:
                if self.cfg.class_names and source.c_dim == 0:
                    lift_to_conditional(target, source)
                elif source_names and source_names != self.cfg.class_names:
                    relabel_conditional(target, source, self.cfg.class_names, source_names)
                else:
                    target.load_state_dict(source.state_dict(), strict=True)
            except RuntimeError as e:
                raise InputError(f"{nets.source}: its {name} does not have the architecture of this training config "
                                 f"({str(e).splitlines()[0]})") from None

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, images: torch.Tensor, snapshot: str | os.PathLike | None = None,
               **changes) -> "Trainer":
        """Continue from ``snapshot`` (default: the newest in ``run_dir``). ``changes`` may alter only the
        schedule (kimg, snapshot_kimg, snapshot_minutes, log_kimg, keep_snapshots); builder, progress and
        reader (needed when the run has one) pass through."""
        kw = {k: changes.pop(k) for k in ("builder", "progress", "reader", "labels") if k in changes}
        allowed = {"kimg", "snapshot_kimg", "snapshot_minutes", "log_kimg", "keep_snapshots"}
        if set(changes) - allowed:
            raise InputError(f"resume can only change {', '.join(sorted(allowed))}, not {', '.join(sorted(set(changes) - allowed))}")
        path = Path(snapshot) if snapshot is not None else latest_snapshot(run_dir)
        if path is None:
            raise CheckpointError(f"{run_dir}: no snapshot to resume from")
        snap = read_snapshot(path)
        cfg = config_from_snapshot(snap.meta, str(path))
        if changes:
            cfg = cfg.replace(**changes)
        trainer = cls(cfg, images, run_dir, **kw)
        trainer._load(snap)
        return trainer

    # ------------------------------------------------------------------ snapshots

    def _modules(self) -> tuple[tuple[str, torch.nn.Module], ...]:
        """The trained modules a snapshot holds, by prefix."""
        mods = (("G", self.G), ("D", self.D), ("G_ema", self.G_ema))
        mods += (("D_read", self.D_read),) if self.D_read is not None else ()
        return mods + tuple((f"D_{name}", critic) for name, critic in self.D_local.items())

    def _optimizers(self) -> tuple[tuple[str, torch.optim.Optimizer], ...]:
        opts = (("opt_G", self.opt_G), ("opt_D", self.opt_D))
        opts += (("opt_D_read", self.opt_D_read),) if self.D_read is not None else ()
        return opts + tuple((f"opt_D_{name}", opt) for name, opt in self.opt_D_local.items())

    def _pack(self) -> Snapshot:
        tensors = {}
        for prefix, module in self._modules():
            tensors.update(pack_module(prefix, module))
        groups = {}
        for prefix, opt in self._optimizers():
            state, groups[f"{prefix}_groups"] = pack_optimizer(prefix, opt)
            tensors.update(state)
        tensors["rng.latent"] = self.latent_gen.get_state()
        tensors["rng.noise"] = self.noise_gen.get_state()
        tensors["pl_mean"] = self.pl_mean.clone()
        meta = {"config": self.cfg.to_json(), "step": self.step, "stream": self.stream.state(),
                "history": self.history, "wall_seconds": self.wall_seconds, **groups,
                "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return Snapshot(tensors, meta)

    def _load(self, snap: Snapshot) -> None:
        src = str(snap.path)
        t = snap.tensors
        try:
            for prefix, module in self._modules():
                unpack_module(prefix, module, t, src)
            for prefix, opt in self._optimizers():
                unpack_optimizer(prefix, opt, t, snap.meta[f"{prefix}_groups"], src)
            for name in ("rng.latent", "rng.noise"):
                if t[name].dtype != torch.uint8 or t[name].ndim != 1:
                    raise ValueError(f"'{name}' is not a generator state (uint8 vector)")
            self.latent_gen.set_state(t["rng.latent"])
            self.noise_gen.set_state(t["rng.noise"])
            self.pl_mean = check_tensor(t["pl_mean"], src, "'pl_mean'", (), torch.float32).clone()
            self.stream.load_state(snap.meta["stream"])
            self.nimg = snapshot_int(snap.meta, "nimg", src)
            self.step = snapshot_int(snap.meta, "step", src)
            history = snap.meta.get("history", [])
            if not isinstance(history, list) or not all(
                    isinstance(h, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                for v in h.values()) for h in history):
                raise ValueError("'history' is not a list of {name: number} entries")
            self.history = list(history)
            self.wall_seconds = snapshot_float(dict(wall_seconds=snap.meta.get("wall_seconds", 0.0)), "wall_seconds", src)
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise CheckpointError(f"{src}: incomplete training snapshot ({str(e)[:200]})") from None

    def save_snapshot(self) -> Path:
        """Write the resumable state, a sample grid and the loss plot; return the snapshot's JSON path."""
        from rig.stylegan2.checkpoints import save_networks

        path = write_snapshot(self.run_dir, self.nimg, self._pack(), keep=self.cfg.keep_snapshots)
        # The same weights in rig's network format, for `rig generate --network RUN/network-latest.safetensors`.
        extra = {"kimg": self.nimg / 1000, "train_config": self.cfg.to_json()}
        if self.cfg.class_names:
            extra["labels"] = {"class_names": list(self.cfg.class_names), "class_prior": list(self.cfg.class_prior)
                               or [1 / len(self.cfg.class_names)] * len(self.cfg.class_names)}
        save_networks(self.run_dir / "network-latest.safetensors", {"G_ema": self.G_ema, "G": self.G, "D": self.D},
                      extra=extra)
        save_grid(self.sample(self.grid_z, self.grid_c), self.run_dir / "grids" / f"grid-{self.nimg:09d}.png")
        save_loss_plot(self.history, self.run_dir / "loss.png")
        return path

    @torch.no_grad()
    def sample(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        """G_ema images (N, C, S, S) for latents ``z`` (N, z_dim) and one-hot labels ``c`` (N, c_dim) of a
        conditional run (default: the grid's), constant noise; leaves every RNG alone."""
        if c is None and self.grid_c is not None:
            c = self.grid_c[torch.arange(len(z)) % len(self.grid_c)]
        return self.G_ema(z, c, truncation_psi=truncation_psi, noise_mode="const")

    # ------------------------------------------------------------------ one step

    def _latents(self, n: int) -> torch.Tensor:
        return torch.randn((n, self.cfg.z_dim), generator=self.latent_gen)

    def _one_hot(self, classes: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(classes, len(self.cfg.class_names)).to(torch.float32)

    def _real_classes(self, idx: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
        """Classes (B,) int64 of the dataset images ``idx`` (B,) as the stream gave them: a ``mirrored``
        (B,) bool image takes its class's left-right twin."""
        classes = self.labels[idx]
        if self.mirror_class is None:
            return classes
        return torch.where(mirrored, self.mirror_class[classes], classes)

    def _wrong_classes(self, classes: torch.Tensor) -> torch.Tensor:
        """For each class in ``classes`` (B,) int64, another class drawn uniformly from the rest (B,)."""
        k = len(self.cfg.class_names)
        return (classes + torch.randint(1, k, classes.shape, generator=self.latent_gen)) % k

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        """One-hot labels (n, c_dim) of ``n`` uniformly drawn dataset images; None when unconditional
        (and then nothing is drawn, so unconditional runs keep their random streams)."""
        if self.labels is None:
            return None
        return self._one_hot(self.labels[torch.randint(len(self.labels), (n,), generator=self.latent_gen)])

    def _run_G(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and ws for latents ``z`` and labels ``c``; with probability ``style_mixing`` the ws
        after a random cutoff layer come from a second latent, same labels (its mapping does not
        update w_avg)."""
        ws = self.G.mapping(z, c)
        if self.cfg.style_mixing > 0:
            num_ws = ws.shape[1]
            cutoff = int(torch.randint(1, num_ws, (), generator=self.latent_gen))
            mix = float(torch.rand((), generator=self.latent_gen)) < self.cfg.style_mixing
            z2 = self._latents(len(z))
            if mix:
                ws2 = self.G.mapping(z2, c, skip_w_avg_update=True)
                ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws, generator=self.noise_gen), ws

    @staticmethod
    def _step_optimizer(opt: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    def _train_step(self) -> None:
        cfg = self.cfg
        B = cfg.batch
        real, real_idx, mirrored = self.stream.next_indexed(B)
        real_classes = None if self.labels is None else self._real_classes(real_idx, mirrored)
        real_c = None if real_classes is None else self._one_hot(real_classes)

        g_frozen = self.nimg < cfg.g_freeze_kimg * 1000
        if not g_frozen:
            self._train_G(B)

        fake_c = self._fake_labels(B)
        with torch.no_grad():
            fake, _ = self._run_G(self._latents(B), fake_c)
        mismatch = None
        if cfg.label_mismatch > 0:
            mismatch = (self._one_hot(self._wrong_classes(real_classes)), cfg.label_mismatch)
        self._train_critic("", self.D, self.D, self.opt_D, (real, real_c), (fake, fake_c), cfg.r1_gamma, mismatch)
        if self.D_read is not None:
            with torch.no_grad():
                read_real, read_fake = self.reader(real), self.reader(fake)
            self._train_critic("_read", lambda x, c: self.D_read(x), self.D_read, self.opt_D_read,
                               (read_real, None), (read_fake, None), cfg.reader_r1_gamma)
        for region in cfg.local_critics:
            critic = self.D_local[region.name]
            self._train_critic(f"_{region.name}", critic, critic, self.opt_D_local[region.name],
                               (region.crop(real), real_c), (region.crop(fake), fake_c), cfg.r1_gamma)

        self.nimg += B
        self.step += 1
        if not g_frozen:
            update_ema(self.G_ema, self.G, ema_beta(B, cfg.ema_kimg, cfg.ema_rampup, self.nimg))

    def _train_critic(self, suffix: str, score: Callable, module: torch.nn.Module, opt: torch.optim.Optimizer,
                      real: tuple, fake: tuple, r1_gamma: float, mismatch: tuple | None = None) -> None:
        """One critic step: the logistic loss on ``real`` vs ``fake`` inputs, then (every ``r1_interval``
        steps) R1 on the real ones scaled by the interval. ``real`` / ``fake``: (inputs, labels or None);
        ``score(inputs, labels)`` gives (N, ...) logits; ``suffix`` tells the logged keys apart
        (loss_D<suffix>, real_score<suffix>, ...). ``mismatch``: (wrong labels of the real inputs,
        weight), which adds weight x softplus(score(real, wrong labels)) to the loss."""
        cfg = self.cfg
        (real, real_c), (fake, fake_c) = real, fake
        module.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        fake_logits = score(fake, fake_c)
        real_logits = score(real, real_c)
        loss = L.d_logistic_loss(real_logits, fake_logits).mean()
        if mismatch is not None:
            wrong_logits = score(real, mismatch[0])
            loss = loss + mismatch[1] * torch.nn.functional.softplus(wrong_logits).mean()
            self._meter.add(f"mismatch_score{suffix}", wrong_logits.detach().mean())
        loss.backward()
        self._step_optimizer(opt, module)
        self._meter.add(f"loss_D{suffix}", loss.detach())
        self._meter.add(f"real_score{suffix}", real_logits.detach().mean())
        self._meter.add(f"fake_score{suffix}", fake_logits.detach().mean())
        if r1_gamma > 0 and self.step % cfg.r1_interval == 0:
            opt.zero_grad(set_to_none=True)
            real_tmp = real.detach().requires_grad_(True)
            logits = score(real_tmp, real_c)
            r1 = L.r1_penalty(logits, real_tmp) * (r1_gamma / 2)
            # The zero-weighted logits tie every parameter (the last bias too) into the graph.
            (logits.reshape(len(logits), -1)[:, 0] * 0 + r1).mean().mul(cfg.r1_interval).backward()
            self._step_optimizer(opt, module)
            self._meter.add(f"r1{suffix}", r1.mean().detach())
        module.requires_grad_(False)

    def _train_G(self, B: int) -> None:
        """One G step: the non-saturating loss on a batch of ``B`` fakes, then lazily the path-length penalty."""
        cfg = self.cfg
        self.G.requires_grad_(True)
        self.opt_G.zero_grad(set_to_none=True)
        c = self._fake_labels(B)
        fake, _ = self._run_G(self._latents(B), c)
        loss_g = L.g_nonsaturating_loss(self.D(fake, c)).mean()
        self._meter.add("loss_G", loss_g.detach())
        if self.D_read is not None:
            loss_read = L.g_nonsaturating_loss(self.D_read(self.reader(fake))).mean()
            self._meter.add("loss_G_read", loss_read.detach())
            loss_g = loss_g + cfg.reader_weight * loss_read
        for region in cfg.local_critics:
            loss_local = L.g_nonsaturating_loss(self.D_local[region.name](region.crop(fake), c)).mean()
            self._meter.add(f"loss_G_{region.name}", loss_local.detach())
            loss_g = loss_g + cfg.local_weight * loss_local
        loss_g.backward()
        self._step_optimizer(self.opt_G, self.G)

        # G reg: path length, lazily
        if cfg.pl_weight > 0 and self.step % cfg.pl_interval == 0:
            self.opt_G.zero_grad(set_to_none=True)
            n = max(1, B // cfg.pl_batch_shrink)
            c = self._fake_labels(n)
            img, ws = self._run_G(self._latents(n), c)
            lengths = L.path_length(img, ws, torch.randn(img.shape, generator=self.latent_gen))
            self.pl_mean = self.pl_mean.lerp(lengths.mean().detach(), cfg.pl_decay)
            penalty = (lengths - self.pl_mean).square() * cfg.pl_weight
            (img[:, 0, 0, 0] * 0 + penalty).mean().mul(cfg.pl_interval).backward()
            self._step_optimizer(self.opt_G, self.G)
            self._meter.add("pl", penalty.mean().detach())
        self.G.requires_grad_(False)

    # ------------------------------------------------------------------ the loop

    def _log(self, seconds: float, images: int) -> None:
        entry = self._meter.flush()
        if entry:
            entry.update(kimg=self.nimg / 1000, sec_per_kimg=seconds / max(images, 1) * 1000, wall_seconds=round(self.wall_seconds, 1))
            self.history.append(entry)

    def train(self, on_snapshot: Callable[[Path], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> Path | None:
        """Train until ``cfg.kimg``; snapshot by kimg and by wall-clock; return the last snapshot path.

        ``on_snapshot`` is called with each new snapshot's path. ``should_stop`` is polled after every
        step; when it returns True the run snapshots and returns early (e.g. on SIGTERM).
        """
        from tqdm import tqdm

        cfg = self.cfg
        target = int(round(cfg.kimg * 1000))
        snap_every = max(1, int(round(cfg.snapshot_kimg * 1000)))
        log_every = max(1, int(round(cfg.log_kimg * 1000)))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / "config.json", json.dumps(cfg.to_json(), indent=1))
        if not (self.run_dir / "reals.png").exists():
            n = min(cfg.grid_size, len(self.stream.images))
            save_grid(self.stream.images[:n].float() / 127.5 - 1, self.run_dir / "reals.png")
        last_path = None
        old_threads = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        bar = tqdm(total=cfg.kimg, initial=self.nimg / 1000, unit="kimg", disable=not self.progress,
                   bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]")
        try:
            t_snap = time.monotonic()
            t_log, n_log = time.monotonic(), self.nimg
            while self.nimg < target:
                t0 = time.monotonic()
                self._train_step()
                self.wall_seconds += time.monotonic() - t0
                bar.update(cfg.batch / 1000)
                if self.nimg // log_every != (self.nimg - cfg.batch) // log_every:
                    self._log(time.monotonic() - t_log, self.nimg - n_log)
                    t_log, n_log = time.monotonic(), self.nimg
                    last = self.history[-1] if self.history else {}
                    bar.set_postfix_str(f"G {last.get('loss_G', 0):.3f} D {last.get('loss_D', 0):.3f} "
                                        f"{3600 / max(last.get('sec_per_kimg', 1e9), 1e-9):.1f} kimg/h", refresh=False)
                by_kimg = self.nimg // snap_every != (self.nimg - cfg.batch) // snap_every
                by_time = cfg.snapshot_minutes is not None and time.monotonic() - t_snap >= cfg.snapshot_minutes * 60
                stop = should_stop is not None and should_stop()
                if by_kimg or by_time or stop or self.nimg >= target:
                    self._log(time.monotonic() - t_log, self.nimg - n_log)
                    t_log, n_log = time.monotonic(), self.nimg
                    last_path = self.save_snapshot()
                    t_snap = time.monotonic()
                    if on_snapshot is not None:
                        on_snapshot(last_path)
                if stop:
                    break
        finally:
            bar.close()
            torch.set_num_threads(old_threads)
        return last_path
