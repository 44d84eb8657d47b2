"""A seeded mutation fuzzer for rig's loaders, run in a long-lived forked worker with a watchdog.

Each *family* is one loader and one genuine seed file (the shared fixtures, the shipped default
generator, or files rig writes from them: a rosinality ``.pt``, a face-model ``.npz``, an x264
``.mp4``, small parameter / latent / SH arrays). Case ``i`` of a family mutates the seed with
``random.Random(f"{seed}:{family}:{i}")`` (1-4 of: bit flips, random bytes, "interesting"
integers, chunk deletion / duplication / insertion, truncation), so any case can be replayed alone.

Cases run in a forked child that stays alive across cases (no interpreter start per input). The
parent watches it: a case that uses more than ``timeout_s`` of CPU time (or more than
``wall_timeout_s`` of wall time, for a case blocked without computing) is a *hang*; CPU time, not
the wall clock, because on a shared machine a niced fuzzer may get a few percent of a core and a
second of work then takes a minute of wall time. A child whose resident
memory passes ``rss_limit_mb`` (polled, and the child's own peak after each case) a *blow-up*, a
child killed by a signal a *crash*; each of these restarts the child at the next case. A case that
raises anything but ``rig.errors.RigError`` is *uncaught*. Loading without error is fine (a mutation
of padding or of a weight's low bits stays a valid file).
"""

from __future__ import annotations

import os
import random
import resource
import select
import shutil
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
SHARED_FIXTURES = Path(os.environ.get("RIG_SHARED_FIXTURES") or REPO.parent / "shared" / "fixtures")  # as tests/conftest.py
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 28, 1 << 40)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1-4 random edits of ``data`` (deterministic for a given ``rng`` state)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if not buf:
            buf += bytes([rng.randrange(256)])
        pos = rng.randrange(len(buf))
        if op == 0:  # one bit
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # a few random bytes
            for j in range(pos, min(len(buf), pos + rng.randint(1, 8))):
                buf[j] = rng.randrange(256)
        elif op == 2:  # an interesting little-endian integer
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            buf[pos:pos + width] = value.to_bytes(width, "little")
        elif op == 3:  # delete a chunk
            del buf[pos:pos + rng.randint(1, 64)]
        elif op == 4:  # duplicate a chunk
            n = rng.randint(1, 64)
            buf[pos:pos] = buf[pos:pos + n]
        elif op == 5:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:  # truncate
            del buf[rng.randrange(len(buf)):]
    return bytes(buf)


@dataclass
class Family:
    """One loader under test: its genuine seed bytes, the file name cases are written as, and the call."""

    name: str
    seed_bytes: bytes
    filename: str
    load: Callable[[Path], object]
    companions: dict[str, bytes] = field(default_factory=dict)  # genuine files written beside each case
    # The share of cases the CI test expects refused (else the mutations test nothing). A JPEG decoder
    # tolerates most damage to entropy-coded data (it decodes a different picture), so less there.
    min_refused: float = 0.5


@dataclass
class FamilyResult:
    name: str
    tried: int = 0
    loaded: int = 0
    rig_errors: int = 0
    uncaught: int = 0
    hangs: int = 0
    blowups: int = 0
    crashes: int = 0
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0  # the workers' CPU time (user + system)
    examples: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return self.uncaught + self.hangs + self.blowups + self.crashes


# ---------------------------------------------------------------------------------------- families


def _load_network(path: Path):
    from rig.stylegan2.checkpoints import load_networks

    return load_networks(path)


def _load_face_model(path: Path):
    from rig.face_model.loading import load_face_model_data

    return load_face_model_data(path)


def _load_static(path: Path):
    from rig.face_model.flame_pkl import load_static_embedding

    return load_static_embedding(path)


def _load_dynamic(path: Path):
    from rig.face_model.flame_pkl import load_dynamic_embedding

    return load_dynamic_embedding(path)


def _load_face_npz(path: Path):
    from rig.face_model.data import FaceModelData

    return FaceModelData.load(path)


def _load_video(path: Path):
    from rig.io.video import VideoReader

    with VideoReader(path) as reader:
        return sum(1 for _ in reader)


def _load_params(path: Path):
    from rig.face_model.params import RigParams

    return RigParams.load(path, n_shape=10, n_expr=10)


def _load_latents(path: Path):
    from rig.stylegan2.generate import load_ws_file

    return load_ws_file(path, num_ws=6, w_dim=16)


def _load_sh(path: Path):
    from rig.render.shading import load_sh

    return load_sh(path)


def _load_face(path: Path):
    from rig.rignet.face import load_face

    return load_face(path, num_ws=10, w_dim=128)


def _load_rignet(path: Path):
    from rig.rignet.files import load_rignet

    return load_rignet(path)


def _load_inverter(path: Path):
    from rig.invert.inverter import load_inverter

    return load_inverter(path)


def _load_photo(path: Path):
    from rig.invert.align import read_photo

    return read_photo(path)


_MEMBER_SEP = b"\n--rig-fuzz-member--\n"


def _unzipped(npz: bytes) -> bytes:
    """The members of an ``.npz`` as ``name \\0 bytes`` joined by a separator, for ``_rezip``: mutations
    of these reach the ``.npy`` headers and data behind the zip's CRC-32, which refuses any changed byte."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(npz)) as zf:
        return _MEMBER_SEP.join(i.filename.encode() + b"\0" + zf.read(i) for i in zf.infolist())


def _rezip(path: Path) -> Path:
    """Write the (mutated) members in ``path`` as a valid stored zip beside it."""
    import zipfile

    import warnings

    out = path.with_name("rezipped.npz")
    with zipfile.ZipFile(out, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a mutation may duplicate a member's name
        for k, part in enumerate(path.read_bytes().split(_MEMBER_SEP)):
            name, _, data = part.partition(b"\0")
            zf.writestr(name.decode("latin1").replace("/", "_") or f"member{k}", data)
    return out


def _load_face_members(path: Path):
    return _load_face(_rezip(path))


def _load_track_members(path: Path):
    return _load_track(_rezip(path))


def _split_safetensors(raw: bytes) -> tuple[bytes, bytes]:
    """(JSON header, tensor data) of a ``.safetensors`` file."""
    n = int.from_bytes(raw[:8], "little")
    return raw[8:8 + n], raw[8 + n:]


class _WithHeader:
    """A loader of a file whose JSON header is the (mutated) case and whose tensor data is the seed's,
    so that mutations reach the metadata (configs, control space, calibration) rather than weights."""

    def __init__(self, load: Callable[[Path], object], data: bytes):
        self.load, self.data = load, data

    def __call__(self, path: Path):
        header = path.read_bytes()
        out = path.with_name("with-header.safetensors")
        out.write_bytes(len(header).to_bytes(8, "little") + header + self.data)
        return self.load(out)


class _TrackModelSize:
    """The two counts ``load_track_params`` asks of a face model (FLAME-sized here), without building one."""

    n_shape = 100
    n_expression = 50


def _load_track(path: Path):
    from rig.track.pipeline import load_track_params

    return load_track_params(path, _TrackModelSize())


class _WorldCase:
    """A loader of a world dataset folder (``rig world sample``) one of whose files is the (mutated)
    case: ``dataset.json`` or shard 0's ``params.npz``; the other files are the seed's. Opens the
    dataset and reads every image, as ``rig train`` does."""

    def __init__(self, files: dict[str, bytes], case_name: str):
        self.files, self.case_name = files, case_name

    def __call__(self, path: Path):
        from rig.world.dataset import WorldDataset

        root = path.with_name("world")
        for name, data in self.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(path.read_bytes() if name == self.case_name else data)
        ds = WorldDataset(root)
        return ds.load_images(progress=False)


class _WorldMembersCase(_WorldCase):
    """``_WorldCase`` whose case is the members of ``params.npz``, re-zipped with valid CRCs first."""

    def __call__(self, path: Path):
        rezipped = _rezip(path)
        return super().__call__(rezipped)


def _world_families(workdir: Path) -> list[Family]:
    """A 3-image, 64 px world dataset drawn by ``rig.world.sampler.sample_world`` (the writer itself):
    its ``dataset.json``, its shard's ``params.npz`` as bytes and with its members re-zipped."""
    from rig.world.sampler import sample_world

    root = workdir / "seed_world"
    if not (root / "shard-00000" / "params.npz").is_file():
        sample_world(root, n=3, seed=0, shard_size=3, progress=False)
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    info, params = "dataset.json", "shard-00000/params.npz"
    return [Family("world_info_json", files[info], "dataset.json", _WorldCase(files, info)),
            Family("world_params_npz", files[params], "params.npz", _WorldCase(files, params)),
            Family("world_params_members", _unzipped(files[params]), "params.members",
                   _WorldMembersCase(files, params))]


class _RigNetRun:
    """A small F + RigNet (6 W+ layers of 32) with their Adam states after one step, built the same way
    (seeded) in the writer and in every fuzz worker: what ``rig train rignet --resume`` restores into."""

    CONFIG = '{"fuzz": "rignet"}'

    def __init__(self):
        import numpy as np
        import torch

        from rig.rignet.controls import encoder_control_names, space_from_readings
        from rig.rignet.model import ParamReader, RigNet, RigNetConfig

        torch.manual_seed(0)
        names = encoder_control_names(("eyeBlinkLeft", "jawOpen"))
        space = space_from_readings(names, np.random.default_rng(0).normal(0, 0.1, (50, len(names))))
        self.reader = ParamReader(6, 32, space.size, hidden=32, per_layer=8)
        self.net = RigNet(6, 32, space, RigNetConfig(code_dim=8, hidden=32))
        self.opt_f = torch.optim.Adam(self.reader.parameters(), lr=1e-3)
        self.opt_r = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.space = space

    def seed_bytes(self) -> bytes:
        import io

        import torch

        from rig.rignet.train import TrainState, snapshot_state

        ws = torch.randn(4, 6, 32, generator=torch.Generator().manual_seed(1))
        q = torch.randn(4, self.space.size, generator=torch.Generator().manual_seed(2))
        for opt, loss in ((self.opt_f, self.reader(ws).square().mean()),
                          (self.opt_r, self.net(ws, q, q.flip(0)).square().mean())):
            opt.zero_grad()
            loss.backward()
            opt.step()
        buf = io.BytesIO()
        torch.save(snapshot_state(self.reader, self.net, self.opt_f, self.opt_r, TrainState("rignet", 3, 1.5),
                                  self.CONFIG), buf)
        return buf.getvalue()


class _InverterRun:
    """A small inverter (32 px input, widths 8-16) and its Adam state after one step."""

    CONFIG = '{"fuzz": "inverter"}'

    def __init__(self):
        import torch

        from rig.invert.inverter import Inverter, InverterConfig

        torch.manual_seed(0)
        self.net = Inverter(InverterConfig(6, 32, input_size=32, widths=(8, 8, 16, 16), hidden=32))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, betas=(0.9, 0.99))

    def seed_bytes(self) -> bytes:
        import io

        import torch

        from rig.invert.inverter_train import _State, snapshot_state

        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
        self.opt.zero_grad()
        self.net(x).square().mean().backward()
        self.opt.step()
        buf = io.BytesIO()
        torch.save(snapshot_state(self.net, self.opt, _State("image", 5, 2.5), self.CONFIG), buf)
        return buf.getvalue()


class _RestoreRigNet:
    """``rig.rignet.train.restore_snapshot`` of the case into a fresh ``_RigNetRun`` (built once per worker)."""

    run = None

    def __call__(self, path: Path):
        from rig.rignet.train import restore_snapshot

        if self.run is None:
            self.run = _RigNetRun()
        r = self.run
        return restore_snapshot(path, r.reader, r.net, r.opt_f, r.opt_r, r.CONFIG)


class _RestoreInverter:
    """``rig.invert.inverter_train.restore_snapshot`` of the case into a fresh ``_InverterRun``."""

    run = None

    def __call__(self, path: Path):
        from rig.invert.inverter_train import restore_snapshot

        if self.run is None:
            self.run = _InverterRun()
        return restore_snapshot(path, self.run.net, self.run.opt, self.run.CONFIG)


def _train_images():
    import torch

    g = torch.Generator().manual_seed(0)
    low = torch.rand((8, 3, 4, 4), generator=g)
    return (torch.nn.functional.interpolate(low, size=(16, 16), mode="bilinear") * 255).to(torch.uint8)


class _ResumeGenerator:
    """``Trainer.resume`` of a run folder of the 'tiny' preset whose newest snapshot's ``.json`` or
    ``.safetensors`` half is the (mutated) case; the rest is the seed run's."""

    def __init__(self, files: dict[str, bytes], case_name: str):
        self.files, self.case_name = files, case_name

    def __call__(self, path: Path):
        from rig.stylegan2.training.loop import Trainer

        root = path.with_name("run")
        for name, data in self.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(path.read_bytes() if name == self.case_name else data)
        return Trainer.resume(root, _train_images(), progress=False)


def _snapshot_families(workdir: Path) -> list[Family]:
    """Training snapshots, as ``--resume`` reads them: ``rig train rignet`` / ``rig train inverter``
    ``snapshot.pt`` (``torch.save`` of state dicts) and ``rig train generator``'s
    ``snapshots/snapshot-N.json`` + ``.safetensors`` (a 'tiny' run of two steps)."""
    from rig.stylegan2.training.config import preset
    from rig.stylegan2.training.loop import Trainer

    seeds = {}
    for name, make in (("rignet", _RigNetRun), ("inverter", _InverterRun)):
        f = workdir / f"seed_{name}_snapshot.pt"
        if not f.is_file():
            f.write_bytes(make().seed_bytes())
        seeds[name] = f.read_bytes()
    run = workdir / "seed_train_run"
    if not (run / "snapshots").is_dir():
        Trainer.start(preset("tiny", kimg=0.008, snapshot_kimg=0.008), _train_images(), run, progress=False).train()
    snaps = sorted((run / "snapshots").glob("snapshot-*.json"))
    files = {str(p.relative_to(run)): p.read_bytes() for p in (snaps[-1], snaps[-1].with_suffix(".safetensors"))}
    meta, blob = (str(p.relative_to(run)) for p in (snaps[-1], snaps[-1].with_suffix(".safetensors")))
    return [Family("rignet_snapshot_pt", seeds["rignet"], "snapshot.pt", _RestoreRigNet()),
            Family("inverter_snapshot_pt", seeds["inverter"], "snapshot.pt", _RestoreInverter()),
            Family("train_snapshot_json", files[meta], "snapshot.json", _ResumeGenerator(files, meta)),
            Family("train_snapshot_safetensors", files[blob], "snapshot.safetensors", _ResumeGenerator(files, blob))]


def _user_file_families(workdir: Path) -> list[Family]:
    """Files rig writes for the user and reads back: a face (``Face.save``), a ``track.npz``
    (``save_track``), and photos (PNG, JPEG) for ``rig invert``."""
    import io
    from types import SimpleNamespace

    import numpy as np
    import torch
    from PIL import Image

    from rig.face_model.params import RigParams
    from rig.rignet.face import Face
    from rig.track.pipeline import ClipTrack, save_track

    gen = torch.Generator().manual_seed(0)
    face = workdir / "seed_face.npz"
    if not face.is_file():
        Face(torch.randn(10, 128, generator=gen), "761e652c36b84604", {"seed": 3, "class": "smile",
             "truncation_psi": 1.0, "noise_mode": "const"}, np.linspace(-1, 1, 4), ("jawOpen", "smile", "yaw", "pitch"),
             {"box": [10.0, 12.0, 90.0, 92.0], "angle": 0.1}, "face.tuned.safetensors", "0123456789abcdef").save(face)
    track = workdir / "seed_track.npz"
    if not track.is_file():
        T = 4
        p = RigParams.zeros(T, _TrackModelSize.n_shape, _TrackModelSize.n_expression, dtype=torch.float64)
        params = RigParams(*(torch.randn(t.shape, generator=gen, dtype=torch.float64) * 0.05
                             for t in p.as_dict().values()))
        lms = np.random.default_rng(0).uniform(10, 50, (T, 68, 2))
        fit = SimpleNamespace(params=params, landmarks_fit=lms + 0.5, residual_px=np.full(T, 0.7), width=64, height=48,
                              camera_model="weak_perspective", weak_perspective=np.tile([[4.0, 0.1, -0.1]], (T, 1)))
        lt = SimpleNamespace(landmarks=lms, detected=np.ones(T, bool), source=np.full(T, 3, np.int8),
                             scores=np.full(T, 1.5))
        save_track(track, ClipTrack(fit, lt, 10.0, 0, "clip.mp4", "default", {}))
    try:  # skimage's astronaut photo where installed, else the repository's picture of her inversion
        from skimage import data as skdata

        img = Image.fromarray(skdata.astronaut())
    except ImportError:
        img = Image.open(REPO / "docs" / "img" / "invert_astronaut.png").convert("RGB")
        img = img.crop((0, 0, img.height, img.height))  # the photo, the first panel of the sheet
    img.thumbnail((128, 128), Image.LANCZOS)
    photos = {}
    for fmt, kwargs in (("PNG", {}), ("JPEG", {"quality": 85})):
        buf = io.BytesIO()
        img.save(buf, fmt, **kwargs)
        photos[fmt] = buf.getvalue()
    return [Family("face_npz", face.read_bytes(), "face.npz", _load_face),
            Family("face_npz_members", _unzipped(face.read_bytes()), "face.members", _load_face_members),
            Family("track_npz", track.read_bytes(), "track.npz", _load_track),
            Family("track_npz_members", _unzipped(track.read_bytes()), "track.members", _load_track_members),
            Family("photo_png", photos["PNG"], "photo.png", _load_photo),
            Family("photo_jpeg", photos["JPEG"], "photo.jpg", _load_photo, min_refused=0.25)]


def _small_array_families(workdir: Path) -> list[Family]:
    """Files rig writes and reads back from the user: rig parameters, W+ latents, SH lighting."""
    import io

    import numpy as np
    import torch

    from rig.face_model.params import RigParams

    params = workdir / "seed_params.npz"
    if not params.is_file():
        gen = torch.Generator().manual_seed(0)
        p = RigParams.zeros(3, 10, 10, dtype=torch.float64)
        RigParams(*(torch.randn(t.shape, generator=gen, dtype=torch.float64) * 0.1 for t in p.as_dict().values())
                  ).save(params)

    def npy(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        return buf.getvalue()

    rng = np.random.default_rng(0)
    return [Family("params_npz", params.read_bytes(), "params.npz", _load_params),
            Family("latents_npy", npy(rng.standard_normal((2, 6, 16)).astype(np.float32)), "ws.npy", _load_latents),
            Family("sh_npy", npy(rng.standard_normal((9, 3))), "sh.npy", _load_sh)]


def build_families(workdir: Path, fixtures: Path = SHARED_FIXTURES) -> list[Family]:
    """Every family whose seed file exists here (the shared fixtures may be absent on a clean clone)."""
    import numpy as np

    workdir.mkdir(parents=True, exist_ok=True)
    fams: list[Family] = []
    from rig.paths import default_generator_path, default_inverter_path, default_rignet_path

    generator = default_generator_path()
    flame = fixtures / "flame_format"
    tiny = fixtures / "stylegan2_ada" / "tiny64.pkl"
    if tiny.is_file():
        fams.append(Family("nvidia_pkl", tiny.read_bytes(), "network.pkl", _load_network))
    if generator.is_file():
        fams.append(Family("rig_safetensors", generator.read_bytes(), "network.safetensors", _load_network))
    if tiny.is_file():  # the default generator is class-conditional, which rosinality's format cannot hold
        from rig.stylegan2.checkpoints import load_generator, save_rosinality

        pt = workdir / "seed_rosinality.pt"
        if not pt.is_file():
            save_rosinality(pt, load_generator(tiny))
        fams.append(Family("rosinality_pt", pt.read_bytes(), "network.pt", _load_network))
    if (flame / "generic_model.pkl").is_file():
        emb = {n: (flame / n).read_bytes() for n in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy")}
        fams.append(Family("flame_model_pkl", (flame / "generic_model.pkl").read_bytes(), "generic_model.pkl",
                           _load_face_model, emb))
        fams.append(Family("flame_static_pkl", emb["flame_static_embedding.pkl"], "flame_static_embedding.pkl",
                           _load_static))
        fams.append(Family("flame_dynamic_npy", emb["flame_dynamic_embedding.npy"], "flame_dynamic_embedding.npy",
                           _load_dynamic))
        npz = workdir / "seed_face_model.npz"
        if not npz.is_file():
            from rig.face_model.loading import load_face_model_data

            load_face_model_data(flame / "generic_model.pkl").save(npz)
        fams.append(Family("face_model_npz", npz.read_bytes(), "face.npz", _load_face_npz))
    mp4 = workdir / "seed_video.mp4"
    if not mp4.is_file():
        from rig.io.video import VideoWriter

        rng = np.random.default_rng(0)
        with VideoWriter(mp4, fps=10) as writer:
            for t in range(6):
                frame = np.full((48, 64, 3), 40 * t, np.uint8)
                frame[8:40, 8 + 4 * t:24 + 4 * t] = rng.integers(0, 255, (32, 16, 3))
                writer.write(frame)
    fams.append(Family("video_mp4", mp4.read_bytes(), "clip.mp4", _load_video))
    fams += _small_array_families(workdir)
    fams += _user_file_families(workdir)
    fams += _world_families(workdir)
    fams += _snapshot_families(workdir)
    for name, fn, ckpt in (("rignet", _load_rignet, default_rignet_path()),
                           ("inverter", _load_inverter, default_inverter_path())):
        if ckpt.is_file():
            raw = ckpt.read_bytes()
            header, data = _split_safetensors(raw)
            fams.append(Family(f"{name}_safetensors", raw, f"{name}.safetensors", fn))
            fams.append(Family(f"{name}_header", header, f"{name}.header.json", _WithHeader(fn, data)))
    return fams


# ---------------------------------------------------------------------------------------- worker


def _case_bytes(family: Family, seed: int, index: int) -> bytes:
    return mutate(family.seed_bytes, random.Random(f"{seed}:{family.name}:{index}"))


def _child(family: Family, seed: int, indices: range, folder: Path, write_fd: int, rss_limit_kb: int) -> None:
    import torch

    from rig.errors import RigError

    torch.set_num_threads(1)
    for name, data in family.companions.items():
        (folder / name).write_bytes(data)
    path = folder / family.filename
    out = os.fdopen(write_fd, "w", buffering=1)
    for i in indices:
        path.write_bytes(_case_bytes(family, seed, i))
        out.write(f"S {i}\n")
        try:
            family.load(path)
            outcome = "ok"
        except RigError:
            outcome = "rig"
        except BaseException as e:  # noqa: BLE001 - exactly what the fuzzer looks for
            frame = traceback.extract_tb(e.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            outcome = f"uncaught {type(e).__name__} at {where}: {str(e)[:120]!r}".replace("\n", " ")
        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > rss_limit_kb:
            outcome = "blowup"
        out.write(f"D {i} {outcome}\n")
        if outcome == "blowup":
            break
    out.close()
    os._exit(0)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_family(family: Family, n_cases: int, seed: int, workdir: Path, timeout_s: float = 10.0,
               rss_limit_mb: int = 2048, start: int = 0, keep_failures: Path | None = None,
               wall_timeout_s: float | None = None) -> FamilyResult:
    """Run cases ``start .. start + n_cases - 1`` of ``family``; see the module docstring.

    ``timeout_s`` is CPU seconds per case; ``wall_timeout_s`` (default ``30 * timeout_s``) wall seconds."""
    wall_timeout_s = 30 * timeout_s if wall_timeout_s is None else wall_timeout_s
    result = FamilyResult(family.name)
    folder = workdir / f"cases-{family.name}"
    folder.mkdir(parents=True, exist_ok=True)
    limit_kb = rss_limit_mb * 1024
    t0 = time.monotonic()
    next_index, stop = start, start + n_cases

    def record(i: int, outcome: str) -> None:
        result.tried += 1
        if outcome == "ok":
            result.loaded += 1
            return
        if outcome == "rig":
            result.rig_errors += 1
            return
        if outcome.startswith("uncaught"):
            result.uncaught += 1
        elif outcome == "hang":
            result.hangs += 1
        elif outcome == "blowup":
            result.blowups += 1
        else:
            result.crashes += 1
        if len(result.examples) < 20:
            result.examples.append(f"case {i}: {outcome}")
        if keep_failures is not None:
            keep_failures.mkdir(parents=True, exist_ok=True)
            (keep_failures / f"{family.name}-{i}{Path(family.filename).suffix}").write_bytes(
                _case_bytes(family, seed, i))

    while next_index < stop:
        first = next_index
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            try:
                _child(family, seed, range(next_index, stop), folder, write_fd, limit_kb)
            finally:
                os._exit(1)
        os.close(write_fd)
        reader = os.fdopen(read_fd)
        current, started, cpu_at_start, pending = None, time.monotonic(), 0.0, ""
        killed_as = None
        while True:
            ready, _, _ = select.select([reader], [], [], 0.1)
            if ready:
                chunk = os.read(read_fd, 65536).decode()
                if not chunk:
                    break
                pending += chunk
                while "\n" in pending:
                    line, pending = pending.split("\n", 1)
                    kind, idx, *rest = line.split(" ", 2)
                    if kind == "S":
                        current, started, cpu_at_start = int(idx), time.monotonic(), _cpu_s(pid)
                    else:
                        record(int(idx), rest[0])
                        next_index = int(idx) + 1
                        current = None
            if current is not None:
                if (time.monotonic() - started > wall_timeout_s
                        or (time.monotonic() - started > timeout_s and _cpu_s(pid) - cpu_at_start > timeout_s)):
                    killed_as = "hang"
                elif _rss_kb(pid) > limit_kb:
                    killed_as = "blowup"
                if killed_as:
                    os.kill(pid, signal.SIGKILL)
                    break
        _, status, usage = os.wait4(pid, 0)
        result.cpu_seconds += usage.ru_utime + usage.ru_stime
        reader.close()
        if current is not None:  # the child died (or was killed) inside a case
            if killed_as is None:
                sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
                killed_as = f"crash (signal {sig})" if sig else f"crash (exit {os.WEXITSTATUS(status)})"
            record(current, killed_as)
            next_index = current + 1
        elif next_index == first:
            raise RuntimeError(f"fuzz worker for {family.name} exited before its first case (status {status})")
    shutil.rmtree(folder, ignore_errors=True)
    result.seconds = time.monotonic() - t0
    return result
