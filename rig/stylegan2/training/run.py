"""``train_generator``: what ``rig train generator`` does - load a world dataset, start or resume a run."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.stylegan2.training.config import TrainConfig, preset
from rig.stylegan2.training.loop import Trainer
from rig.stylegan2.training.snapshot import latest_snapshot


def train_generator(data_dir: str | os.PathLike, run_dir: str | os.PathLike, config: str = "64",
                    resume: bool = False, progress: bool = True, init: str | os.PathLike | None = None,
                    cond: str | None = None, **overrides) -> tuple[Trainer, Path | None]:
    """Train (or with ``resume`` continue) a generator on the world dataset in ``data_dir``.

    ``config`` names a preset (tiny, 64, 128); ``overrides`` are TrainConfig fields (None values are
    ignored). On resume only schedule fields may change and the preset is ignored (the snapshot's
    config rules). ``init`` (a network file or ``"default"``, new runs only) starts from its weights
    (``Trainer.start``). A config with a ``reader`` (a face-encoder file or "default") trains a reading
    critic on that encoder's readings (``reading_d``). ``cond="preset"`` (new runs only) trains a
    class-conditional G whose label is each image's named expression preset, or 'none'
    (``preset_labels``); ``cond="preset+state"`` splits 'none' by the eyes' and jaw's state
    (``state_labels``). Returns the trainer and the last snapshot written.
    """
    from rig.world.dataset import WorldDataset

    overrides = {k: v for k, v in overrides.items() if v is not None}
    if cond not in (None, *COND_KINDS):
        raise InputError(f"--cond {cond!r}: a world dataset gives the labels {', '.join(COND_KINDS)}")
    if resume and cond is not None:
        raise InputError("--cond sets up a new run; a resumed run keeps its own labels")
    if resume and init is not None:
        raise InputError("--init starts a new run from a network's weights; a resumed run continues its own")
    if resume and latest_snapshot(run_dir) is None:  # before the (slow) image loading
        raise InputError(f"{run_dir}: nothing to resume (no snapshots); drop --resume to start a run")
    nets = None
    if init is not None:  # also before the image loading: a bad file fails at once
        from rig.stylegan2.checkpoints import load_networks

        nets = load_networks(init)
        if nets.D is None:
            import warnings

            warnings.warn(f"{nets.source}: no discriminator in the file; D starts from random weights, which on rig's "
                          "default generator stayed at chance while G drifted (docs/world.md)", RuntimeWarning, stacklevel=2)
    ds = WorldDataset(data_dir, keys=[])
    classes = COND_KINDS[cond](ds) if cond else None  # (names, per-image class, frequencies)
    if resume:
        from rig.stylegan2.training.snapshot import read_snapshot_meta

        cfg = TrainConfig.from_json(read_snapshot_meta(latest_snapshot(run_dir))["config"])
    else:
        if classes is not None:
            overrides.update(class_names=classes[0], class_prior=classes[2])
        cfg = preset(config, **overrides)
        if cfg.resolution != ds.resolution:
            raise InputError(f"{data_dir}: images are {ds.resolution} px but config '{config}' trains at {cfg.resolution} px")
    per_image = None
    if cfg.class_names:  # a new run's classes are the --cond kind's; a resumed run's are found by name
        per_image = (classes or _labels_of(ds, cfg.class_names))[1]
    # Checked before the (slow) image loading.
    order = repeat_presets(ds, cfg.preset_repeat, None if per_image is None else (cfg.class_names, per_image))
    labels = None if per_image is None else per_image[order]
    reader = None
    if cfg.reader:
        from rig.instruments.encoder import load_reader

        reader = load_reader(cfg.reader)
    images = ds.load_images(progress=progress)[order]
    if resume:
        trainer = Trainer.resume(run_dir, images, progress=progress, reader=reader, labels=labels, **overrides)
    else:
        trainer = Trainer.start(cfg, images, run_dir, init=nets, progress=progress, reader=reader, labels=labels)
    with _stop_on_signals() as stopped:
        last = trainer.train(should_stop=stopped)
    return trainer, last


def preset_labels(ds) -> tuple[tuple[str, ...], torch.Tensor, tuple[float, ...]]:
    """Class labels of a world dataset ``ds`` by named expression preset: the class names ('none',
    then the dataset's ``preset_names``), each image's class (N,) int64 (0 for an image drawn without a
    preset) and how often each class occurs (summing to 1)."""
    names, drawn = _recorded_presets(ds, "--cond preset")
    labels = torch.from_numpy(drawn.astype(np.int64) + 1)
    counts = torch.bincount(labels, minlength=len(names) + 1).double()
    return ("none", *names), labels, tuple(float(v) for v in counts / counts.sum())


EYE_CLOSED = 0.3
"""An eye counts as closed from this ``eyeBlinkLeft`` / ``eyeBlinkRight`` coefficient on (0..1)."""
JAW_DROPPED = 0.15
"""The jaw counts as dropped from this opening on (radians, about 8.6 degrees)."""
EYE_STATES = ("", "+eyes_closed", "+left_eye_closed", "+right_eye_closed")


def state_labels(ds, eye_closed: float = EYE_CLOSED, jaw_dropped: float = JAW_DROPPED
                 ) -> tuple[tuple[str, ...], torch.Tensor, tuple[float, ...]]:
    """``preset_labels`` with the class 'none' split by the state of the face, for a conditional G
    that must draw the world's random closed eyes and dropped jaws (about 8 % and 23 % of its images
    without a preset), not only the named presets' ones.

    An image without a preset gets 'none' plus ``+eyes_closed`` (both eyeBlink units >= ``eye_closed``),
    ``+left_eye_closed`` or ``+right_eye_closed`` (that one only), then ``+jaw`` (jaw opening >=
    ``jaw_dropped`` radians): eight classes, 'none' first, then the presets. The names keep
    ``mirrored_classes``' left/right twins. Returns (names, per-image class (N,) int64, frequencies).
    """
    names, drawn = _recorded_presets(ds, "--cond preset+state")
    units = [str(n) for n in ds.info.get("expression_names", [])]
    if "eyeBlinkLeft" not in units or "eyeBlinkRight" not in units or "expression" not in ds.params \
            or "jaw_pose" not in ds.params:
        raise InputError(f"{ds.root}: --cond preset+state needs the 'expression' (with eyeBlinkLeft / eyeBlinkRight) "
                         "and 'jaw_pose' parameters of a world dataset")
    expr, jaw = np.asarray(ds.params["expression"]), np.asarray(ds.params["jaw_pose"])[:, 0]
    left = expr[:, units.index("eyeBlinkLeft")] >= eye_closed
    right = expr[:, units.index("eyeBlinkRight")] >= eye_closed
    eyes = np.select([left & right, left, right], [1, 2, 3], 0)
    state = eyes + len(EYE_STATES) * (jaw >= jaw_dropped)
    state_names = tuple(f"none{e}{j}" for j in ("", "+jaw") for e in EYE_STATES)
    labels = torch.from_numpy(np.where(drawn < 0, state, len(state_names) + drawn).astype(np.int64))
    counts = torch.bincount(labels, minlength=len(state_names) + len(names)).double()
    return (*state_names, *names), labels, tuple(float(v) for v in counts / counts.sum())


COND_KINDS = {"preset": preset_labels, "preset+state": state_labels}
"""--cond kind -> the function giving a world dataset's (class names, per-image class, frequencies)."""


def _labels_of(ds, class_names: tuple[str, ...]):
    """The labels of ``ds`` by whichever ``COND_KINDS`` entry gives ``class_names`` (a resumed run's)."""
    for labels_of in COND_KINDS.values():
        names, per_image, prior = labels_of(ds)
        if tuple(names) == tuple(class_names):
            return names, per_image, prior
    raise InputError(f"{ds.root}: no --cond kind gives the run's classes {list(class_names)}")


def _recorded_presets(ds, option: str) -> tuple[list[str], np.ndarray]:
    """The named presets a world dataset ``ds`` drew from (``preset_names``) and each image's index into
    them (N,) (-1: none); raises ``InputError`` naming ``option`` when the dataset has no such record."""
    names = [str(n) for n in ds.info.get("preset_names", [])]
    if "preset" not in ds.params or not names:
        raise InputError(f"{ds.root}: {option} needs a world dataset that records its named presets "
                         "('preset' parameter and 'preset_names'); this one has none")
    return names, ds.params["preset"]


def repeat_presets(ds, preset_repeat: tuple[tuple[str, int], ...],
                   classes: tuple[tuple[str, ...], torch.Tensor] | None = None) -> torch.Tensor:
    """Dataset indices (M,) int64 in which every image of ``ds`` (a ``WorldDataset``) drawn from a named
    preset listed in ``preset_repeat`` ((name, k), ...) appears k times, every other image once, in
    dataset order. With ``classes`` (a conditional run's class names and each image's class (N,)), a
    name may also be a class ('none+eyes_closed'). Without ``preset_repeat`` it is simply 0..N-1."""
    counts = np.ones(len(ds), np.int64)
    if preset_repeat:
        class_names, per_image = classes if classes is not None else ((), None)
        names, drawn = _recorded_presets(ds, "preset_repeat")
        for name, k in preset_repeat:
            if name in names:
                counts[drawn == names.index(name)] = int(k)
            elif name in class_names:
                counts[per_image.numpy() == class_names.index(name)] = int(k)
            else:
                known = list(names) + [c for c in class_names if c not in names]
                raise InputError(f"{ds.root}: preset_repeat names '{name}', not one of its presets or classes "
                                 f"({', '.join(known)})")
    return torch.from_numpy(np.repeat(np.arange(len(ds)), counts))


@contextlib.contextmanager
def _stop_on_signals():
    """Turn SIGTERM / SIGINT into a polite stop (the loop snapshots, then returns), so a session that
    ends or a Ctrl-C loses nothing; a second signal interrupts at once."""
    requested = []

    def handler(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def parse_preset_repeat(text: str) -> tuple[tuple[str, int], ...]:
    """``"blink=3,smile=2"`` -> ``(("blink", 3), ("smile", 2))``; raises ``InputError`` on anything else."""
    out = []
    for item in text.split(","):
        name, sep, k = item.strip().partition("=")
        try:
            count = int(k)
        except ValueError:
            count = 0
        if not sep or not name.strip() or count < 1:
            raise InputError(f"--preset-repeat: '{item.strip()}' is not NAME=K with a whole K >= 1")
        out.append((name.strip(), count))
    return tuple(out)
