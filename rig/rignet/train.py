"""``rig train rignet``: the parameter reader ``F`` and RigNet, trained self-supervised on a label set.

Three phases, each resumable from the run folder's snapshot:

1. ``reader``: ``F`` regresses the label set's controls from W+ (standardised MSE on readable samples).
2. ``rignet``: StyleRig's losses with ``F`` standing in for the labeler (fast: no images). For a batch
   of latents ``w`` with their labels ``p_w`` and a second batch ``v`` with ``p_v``, the target ``t``
   takes one group (pose, jaw, expression, eyes) or all groups from ``v``, a uniformly drawn head pose,
   or a calibrated named preset at a random strength, and everything else from ``w``;
   ``w' = RigNet(w, p_w, t)``.
   - edit: ``F(w') - F(w)`` matches ``t - p_w`` for every control (edited groups move, the others stay);
   - landmarks: the same difference, measured in metres on the face model's landmarks
     (``rig.rignet.geometry``);
   - cycle: ``RigNet(w', t, p_w)`` returns ``w``; latent: ``|w' - w|^2`` stays small (identity);
   - reconstruction ``RigNet(w, p_w, p_w) = w`` for the ``absolute`` design (exact for ``delta``).
3. ``generator`` (differentiable labelers only): the same losses with ``G`` and the labeler in the loop,
   the edit loss on the labeler's reading of ``G(w')`` itself, plus (``w_appearance``) the colour
   statistics of ``G(w')`` against ``G(w)`` (``colour_statistics``: hair, skin tone, background).

The run folder holds ``snapshot.pt`` (written atomically every ``snapshot_s`` seconds, read back by
``restore_snapshot`` with ``weights_only=True`` and every tensor checked against the run's networks),
``log.jsonl`` (losses), ``losses.png`` and, at the end, ``rignet.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.io.atomic import atomic_path
from rig.io.run_log import end_step, plot_losses
from rig.rignet.controls import GROUPS, ControlSpace, space_from_readings
from rig.rignet.model import ParamReader, RigNet, RigNetConfig

PHASES = ("reader", "rignet", "generator")
_ORDER = PHASES + ("done",)
TARGET_MODES = ("group", "all", "pose_uniform", "preset")


@dataclass(frozen=True)
class RigNetTrainConfig:
    """Steps, batches and loss weights of the three phases (see the module docstring). ``calibrate``:
    after training, record what the encoder reads for presets and units (``rig.rignet.calibration``;
    ~1 min of world renders), which ``--expr`` / ``--unit`` / ``--eyes`` edits need."""

    reader_steps: int = 10000
    reader_batch: int = 256
    reader_lr: float = 1e-3
    steps: int = 4000
    batch: int = 64
    lr: float = 1e-3
    g_steps: int = 6000
    g_batch: int = 16
    g_lr: float = 3e-4
    w_edit: float = 1.0
    w_landmark: float = 1.0
    w_cycle: float = 1.0
    w_latent: float = 0.1
    w_recon: float = 1.0
    w_appearance: float = 2.0
    w_preset: float = 0.0
    mode_probs: tuple[float, ...] = (0.45, 0.1, 0.2, 0.25)
    seed: int = 0
    snapshot_s: float = 60.0
    calibrate: bool = True
    rignet: RigNetConfig = field(default_factory=RigNetConfig)

    def validate(self) -> "RigNetTrainConfig":
        for name in ("reader_steps", "steps", "g_steps"):
            if getattr(self, name) < 0:
                raise InputError(f"train rignet: {name} must be >= 0")
        for name in ("reader_batch", "batch", "g_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"train rignet: {name} must be >= 1")
        if len(self.mode_probs) != len(TARGET_MODES) or min(self.mode_probs) < 0 or sum(self.mode_probs) <= 0:
            raise InputError(f"train rignet: mode_probs needs {len(TARGET_MODES)} non-negative weights")
        return self

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["rignet"] = self.rignet.to_json()
        return d


def _frozen_names(names: tuple[str, ...], controls: np.ndarray) -> tuple[str, ...]:
    """Controls the generator never varies: spread below 2 % of the median spread of their kind
    (expression units: gaze, jawOpen, tongue in the default world; the jaw's y / z rotations)."""
    std = controls.std(0)
    frozen = []
    expr = [i for i, n in enumerate(names) if not n.startswith("jaw_") and n not in ("yaw", "pitch", "roll")]
    ref = np.median(std[expr]) if expr else 0.0
    for i, n in enumerate(names):
        if n in ("jaw_y", "jaw_z"):
            frozen.append(n)
        elif i in expr and std[i] < 0.25 * ref:
            frozen.append(n)
    return tuple(frozen)


def control_space_for(labels, frozen: tuple[str, ...] = ()) -> ControlSpace:
    """The control space of a label set: standardisation and range from its readable samples;
    ``frozen`` adds names known not to vary (the world's own list for the default encoder)."""
    c = labels.controls[torch.from_numpy(labels.readable)].double().numpy()
    if len(c) < 16:
        raise InputError(f"label set has {len(c)} readable samples; training needs far more")
    names = labels.names
    known = tuple(n for n in names if n in frozen or n in _frozen_names(names, c))
    return space_from_readings(names, c, known)


def world_frozen(labels) -> tuple[str, ...]:
    """For a label set read by the default world's encoder: the units the world never varies."""
    if labels.info.get("labeler") != "encoder":
        return ()
    from rig.rignet.calibration import world_frozen_units

    E = len(labels.names) - 6
    return world_frozen_units(tuple(labels.names[:E]))


class _Batches:
    """Deterministic batches: step ``k`` of phase ``ph`` always draws the same indices and targets."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def gen(self, phase: str, step: int) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 1_000_003 + PHASES.index(phase)) * 10_000_019 + step)

    def indices(self, g: torch.Generator, batch: int) -> torch.Tensor:
        return torch.randint(0, self.n, (batch,), generator=g)


def preset_changes(space: ControlSpace, calibration: dict | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(K, P) standardised reading change of each calibrated preset at strength 1 over the neutral
    heads, and the (P,) standardised neutral reading; None without a calibration."""
    if not calibration:
        return None
    neutral = np.asarray(calibration["presets"]["neutral"], np.float64)
    names = sorted(k for k in calibration["presets"] if k != "neutral")
    dirs = np.stack([(np.asarray(calibration["presets"][k]) - neutral) / space.std for k in names])
    return torch.as_tensor(dirs, dtype=torch.float32), torch.as_tensor((neutral - space.mean) / space.std,
                                                                       dtype=torch.float32)


def make_targets(space: ControlSpace, source: torch.Tensor, other: torch.Tensor, g: torch.Generator,
                 mode_probs=(0.45, 0.1, 0.2, 0.25), presets: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised targets (B, P) on top of ``source``, per sample one of ``TARGET_MODES``: one group
    of ``other``; all of ``other``; a uniform head pose within the generator's range; a calibrated
    preset at strength U(0.3, 1.2) on the expression, eyes and jaw (added to the source's, or, half of
    the time, replacing them from the neutral reading, as ``--absolute`` does). Also returns (B, P) the
    standardised preset direction of each preset sample (zeros for the others), for ``along_error``."""
    B = source.shape[0]
    t = source.clone()
    probs = torch.tensor(mode_probs, dtype=torch.float)
    if presets is None:
        probs[3] = 0
    modes = torch.multinomial(probs, B, replacement=True, generator=g)
    groups = space.groups_present()
    pick = torch.randint(0, len(groups), (B,), generator=g)
    masks = torch.stack([space.group_mask([gname]) for gname in groups])  # (G, P)
    take = torch.zeros(B, space.size, dtype=torch.bool)
    take[modes == 0] = masks[pick[modes == 0]]
    take[modes == 1] = space.active
    t = torch.where(take, other, t)
    uni = modes == 2
    if uni.any() and space.low is not None:
        pose = torch.from_numpy(space.group_indices("pose"))
        lo = torch.as_tensor((space.low - space.mean) / space.std, dtype=t.dtype)[pose]
        hi = torch.as_tensor((space.high - space.mean) / space.std, dtype=t.dtype)[pose]
        u = torch.rand(int(uni.sum()), len(pose), generator=g, dtype=t.dtype)
        t[uni.nonzero()[:, 0][:, None], pose[None, :]] = lo + u * (hi - lo)
    pre = modes == 3
    direction = torch.zeros_like(t)
    if pre.any():
        dirs, neutral = presets
        face = space.group_mask(["jaw", "expression", "eyes"])
        k = torch.randint(0, len(dirs), (int(pre.sum()),), generator=g)
        strength = 0.3 + 0.9 * torch.rand(int(pre.sum()), 1, generator=g)
        absolute = torch.rand(int(pre.sum()), 1, generator=g) < 0.5
        base = torch.where(absolute, neutral[None].expand(len(k), -1), t[pre])
        t[pre] = torch.where(face[None], base + strength * dirs[k], t[pre])
        direction[pre] = dirs[k] * face[None]
    return t, direction


def along_error(reached: torch.Tensor, target: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Mean squared shortfall of (B, P) ``reached`` against ``target`` along each sample's preset
    ``direction``, in units of the preset's change at strength 1 (0 for samples without one)."""
    norm = (direction * direction).sum(1)
    has = norm > 1e-8
    if not has.any():
        return reached.new_zeros(())
    err = ((reached - target) * direction).sum(1)[has] / norm[has]
    return err.pow(2).sum() / len(reached)


def group_mse(pred: torch.Tensor, target: torch.Tensor, space: ControlSpace) -> torch.Tensor:
    """Mean over groups of the per-group mean squared error (standardised units), so a 3-value pose
    weighs as much as 40 expression units."""
    losses = []
    for g in space.groups_present():
        idx = torch.from_numpy(space.group_indices(g)).to(pred.device)
        losses.append(((pred[:, idx] - target[:, idx]) ** 2).mean())
    return torch.stack(losses).mean()


def colour_statistics(images: torch.Tensor) -> torch.Tensor:
    """(B, 12) per-channel mean and std of whole (B, 3, S, S) images and the mean and std of their top
    quarter (where hair is): an appearance summary that a head turn barely moves but a change of hair,
    skin tone or background does."""
    top = images[:, :, : images.shape[2] // 4]
    return torch.cat([images.mean((2, 3)), images.std((2, 3)), top.mean((2, 3)), top.std((2, 3))], 1)


@dataclass
class TrainState:
    phase: str = "reader"
    step: int = 0
    elapsed_s: float = 0.0


SNAPSHOT_KEYS = ("reader", "rignet", "opt_f", "opt_r", "phase", "step", "elapsed_s", "config")


def snapshot_state(reader: ParamReader, net: RigNet, opt_f: torch.optim.Optimizer, opt_r: torch.optim.Optimizer,
                   state: TrainState, config_text: str) -> dict:
    """What ``snapshot.pt`` holds (``SNAPSHOT_KEYS``): F's and RigNet's state dicts, both Adam states,
    the phase / step / elapsed seconds and the run's settings as sorted JSON text."""
    return {"reader": reader.state_dict(), "rignet": net.state_dict(), "opt_f": opt_f.state_dict(),
            "opt_r": opt_r.state_dict(), "phase": state.phase, "step": state.step, "elapsed_s": state.elapsed_s,
            "config": config_text}


def restore_snapshot(path: str | os.PathLike, reader: ParamReader, net: RigNet, opt_f: torch.optim.Optimizer,
                     opt_r: torch.optim.Optimizer, config_text: str) -> TrainState:
    """Load ``snapshot.pt`` into this run's freshly built F, RigNet and optimisers; return the progress.

    Every tensor is checked against the modules built from the run's config before anything is
    loaded (``rig.io.torch_snapshot``): a malformed file is a ``CheckpointError`` naming it, a snapshot
    of other settings an ``InputError``."""
    from rig.io.torch_snapshot import (load_module_state, load_optimizer_state, read_torch_snapshot,
                                       snapshot_float, snapshot_int, snapshot_str)

    label = str(path)
    snap = read_torch_snapshot(path, SNAPSHOT_KEYS, "RigNet training snapshot")
    if snap["config"] != config_text:
        raise InputError(f"{label}: the snapshot was trained with other settings; resume with the same ones")
    state = TrainState(snapshot_str(snap, "phase", label, _ORDER), snapshot_int(snap, "step", label),
                       snapshot_float(snap, "elapsed_s", label))
    load_module_state(reader, snap["reader"], label, "reader")
    load_module_state(net, snap["rignet"], label, "rignet")
    load_optimizer_state(opt_f, snap["opt_f"], label, "opt_f")
    load_optimizer_state(opt_r, snap["opt_r"], label, "opt_r")
    return state


def train_rignet(network: str, labels_dir: str | os.PathLike, out_dir: str | os.PathLike,
                 cfg: RigNetTrainConfig = RigNetTrainConfig(), resume: bool = False, progress: bool = True,
                 init: str | os.PathLike | None = None) -> Path:
    """Train F and RigNet for ``network`` on the label set ``labels_dir``; returns the RigNet file's path.
    ``init``: a RigNet file of the same generator and controls to start from (a fine-tune)."""
    from tqdm import tqdm

    from rig.rignet.files import save_rignet
    from rig.rignet.labelers import make_labeler
    from rig.rignet.labels import LabelSet
    from rig.stylegan2.checkpoints import load_generator
    from rig.stylegan2.identity import generator_identity

    cfg = cfg.validate()
    run = Path(out_dir)
    snap_path = run / "snapshot.pt"
    if run.exists() and any(run.iterdir()) and not resume:
        raise InputError(f"{run}: run folder is not empty; pass --resume to continue it or choose another")
    if resume and not snap_path.is_file():
        raise InputError(f"{run}: nothing to resume (no snapshot.pt)")
    run.mkdir(parents=True, exist_ok=True)
    G = load_generator(network)
    labels = LabelSet.load(labels_dir)
    ident = generator_identity(G)
    if labels.info["generator_identity"] != ident:
        raise InputError(f"{labels_dir}: labelled for generator {labels.info['generator_identity']}, "
                         f"{network} is {ident}")
    keep = np.flatnonzero(labels.readable)
    ws_all = labels.ws[keep].float()
    space = control_space_for(labels, world_frozen(labels))
    q_all = space.normalise(labels.controls[keep].double()).float()
    labeler = make_labeler(labels.info["labeler"])
    use_g = cfg.g_steps > 0 and getattr(labeler, "differentiable", False)
    face_model = None
    lmk = None
    if labels.info["labeler"] == "encoder" and cfg.w_landmark > 0:
        from rig.face_model import load_face_model
        from rig.rignet.geometry import ControlLandmarks

        face_model = load_face_model("default")
        lmk = ControlLandmarks(face_model)

    calibration = None
    if labels.info["labeler"] == "encoder" and cfg.calibrate:
        # What the encoder reads for presets and units on world renders: the targets of --expr / --unit /
        # --eyes, and of the preset edits RigNet trains on. Deterministic, so a resumed run recomputes it.
        cal_path = run / "calibration.json"
        if cal_path.is_file():
            calibration = json.loads(cal_path.read_text(encoding="utf-8"))
        else:
            from rig.io.atomic import write_text_atomic
            from rig.rignet.calibration import calibrate_encoder

            calibration = calibrate_encoder(labeler, progress=progress)
            write_text_atomic(cal_path, json.dumps(calibration))
    presets = preset_changes(space, calibration)

    torch.manual_seed(cfg.seed)
    reader = ParamReader(G.num_ws, G.w_dim, space.size)
    net = RigNet(G.num_ws, G.w_dim, space, cfg.rignet)
    reader.w_avg.copy_(G.mapping.w_avg)
    net.w_avg.copy_(G.mapping.w_avg)
    if init is not None and not resume:
        from rig.rignet.files import load_rignet

        start = load_rignet(init)
        start.check_generator(G)
        if start.space.names != space.names or start.rignet.cfg.to_json() != net.cfg.to_json():
            raise InputError(f"{init}: another control space or RigNet shape than this run's; cannot start from it")
        reader.load_state_dict(start.reader.state_dict())
        net.load_state_dict(start.rignet.state_dict())
    opt_f = torch.optim.Adam(reader.parameters(), lr=cfg.reader_lr)
    opt_r = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    state = TrainState()
    if resume:
        state = restore_snapshot(snap_path, reader, net, opt_f, opt_r, json.dumps(cfg.to_json(), sort_keys=True))
    batches = _Batches(len(keep), cfg.seed)
    active = space.active
    w_var = ws_all.var(0).mean().item()
    last_snap = time.perf_counter()
    t_start = time.perf_counter() - state.elapsed_s

    def snapshot() -> None:
        state.elapsed_s = time.perf_counter() - t_start
        with atomic_path(snap_path, suffix=".pt") as tmp:
            torch.save(snapshot_state(reader, net, opt_f, opt_r, state, json.dumps(cfg.to_json(), sort_keys=True)),
                       tmp)
        plot_losses(run, PHASES)

    def landmark_term(dq: torch.Tensor, base_q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # Reached controls (base + change) against the target, in millimetres on the face.
        reached = space.denormalise((base_q + dq).double()).float()
        goal = space.denormalise(t.double()).float()
        return ((lmk(reached) - lmk(goal)) * 1000).pow(2).mean() / 25.0  # (5 mm)^2 -> 1

    def edit_losses(phase: str, g: torch.Generator, batch: int) -> dict[str, torch.Tensor]:
        i, j = batches.indices(g, batch), batches.indices(g, batch)
        ws, qw, qv = ws_all[i], q_all[i], q_all[j]
        t, direction = make_targets(space, qw, qv, g, cfg.mode_probs, presets)
        w2 = net(ws, qw, t)
        losses = {}
        if phase == "rignet":
            with torch.no_grad():
                base = reader(ws)
            dq = reader(w2) - base
            losses["edit"] = group_mse(dq, t - qw, space)
            if cfg.w_preset > 0 and presets is not None:
                losses["preset"] = along_error(qw + dq, t, direction)
            if lmk is not None and cfg.w_landmark > 0:
                losses["landmark"] = landmark_term(dq, qw, t)
        else:
            img = G.synthesis(w2, noise_mode="const")
            read, _ = labeler.readings(img)
            q2 = space.normalise(read.double()).float()
            losses["edit"] = group_mse(q2, t, space)
            if cfg.w_preset > 0 and presets is not None:
                losses["preset"] = along_error(q2, t, direction)
            if cfg.w_appearance > 0:
                with torch.no_grad():
                    ref = colour_statistics(G.synthesis(ws, noise_mode="const"))
                losses["appearance"] = (colour_statistics(img) - ref).pow(2).sum(1).mean()
            if lmk is not None and cfg.w_landmark > 0:
                losses["landmark"] = landmark_term(q2 - qw, qw, t)
        losses["cycle"] = (net(w2, t, qw) - ws).pow(2).mean() / w_var
        losses["latent"] = (w2 - ws).pow(2).mean() / w_var
        if cfg.rignet.design == "absolute":
            losses["recon"] = (net(ws, qw, qw) - ws).pow(2).mean() / w_var
        return losses

    weights = {"edit": cfg.w_edit, "landmark": cfg.w_landmark, "cycle": cfg.w_cycle, "latent": cfg.w_latent,
               "recon": cfg.w_recon, "appearance": cfg.w_appearance, "preset": cfg.w_preset}
    plan = [("reader", cfg.reader_steps), ("rignet", cfg.steps), ("generator", cfg.g_steps if use_g else 0)]
    for phase, n_steps in plan:
        if _ORDER.index(phase) < _ORDER.index(state.phase):
            continue
        if phase != state.phase:
            state.phase, state.step = phase, 0
        if phase == "generator":
            for group in opt_r.param_groups:
                group["lr"] = cfg.g_lr
        bar = tqdm(total=n_steps, initial=state.step, desc=f"rignet [{phase}]", unit="step",
                   disable=not progress or state.step >= n_steps)
        while state.step < n_steps:
            g = batches.gen(phase, state.step)
            if phase == "reader":
                i = batches.indices(g, cfg.reader_batch)
                pred = reader(ws_all[i])
                loss = ((pred - q_all[i]) ** 2)[:, active].mean()
                opt_f.zero_grad(set_to_none=True)
                loss.backward()
                opt_f.step()
                record = {"reader": loss.item()}
            else:
                losses = edit_losses(phase, g, cfg.batch if phase == "rignet" else cfg.g_batch)
                loss = sum(weights[k] * v for k, v in losses.items())
                opt_r.zero_grad(set_to_none=True)
                loss.backward()
                opt_r.step()
                record = {k: v.item() for k, v in losses.items()}
            end_step(run, phase, state, n_steps, record, bar, t_start)
            if time.perf_counter() - last_snap > cfg.snapshot_s:
                snapshot()
                last_snap = time.perf_counter()
        bar.close()
    state.phase, state.step = "done", 0
    snapshot()
    out = run / "rignet.safetensors"
    save_rignet(out, net, reader, space, G, labels.info, cfg, calibration=calibration, elapsed_s=state.elapsed_s)
    return out
