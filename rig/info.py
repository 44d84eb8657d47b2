"""What ``rig info`` reports: versions, devices, shipped checkpoints, face models, compiled kernels.

Kernel hooks: any module named in ``KERNEL_STATUS_MODULES`` may define
``kernel_status() -> dict[str, str]`` mapping a kernel name to a short state ("built", "not built",
"failed: ..."). It must answer from what is already on disk or in memory and never start a
compile (``rig info`` has to stay instant). ``build_kernels() -> dict[str, str]`` builds the
module's kernels now and says how each went ("cached", "built in N s", "failed: ..."), for
``rig info --build``. Modules that are missing or define no hook are skipped.
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass, field

KERNEL_STATUS_MODULES = ("rig.render", "rig.stylegan2", "rig.stylegan2.ops", "rig.track")


@dataclass
class FaceModelSummary:
    """One face model: where it is and its sizes, or why it could not be read."""

    spec: str
    path: str
    file_bytes: int = 0
    n_vertices: int = 0
    n_faces: int = 0
    n_shape: int = 0
    n_expression: int = 0
    n_landmarks: int = 0
    has_uv: bool = False
    problem: str = ""


@dataclass
class RigInfo:
    versions: dict[str, str]
    devices: list[str]
    checkpoints_dir: str
    checkpoint_files: list[tuple[str, int]]
    face_models: list[FaceModelSummary]
    kernels: dict[str, str] = field(default_factory=dict)


def summarize_face_model(spec: str) -> FaceModelSummary:
    """Sizes of the face model ``spec`` names ('default' or a path); problems are reported, not raised."""
    from rig.errors import RigError
    from rig.face_model.loading import load_face_model_data, resolve_face_model_path

    try:
        path = resolve_face_model_path(spec)
    except RigError as e:
        return FaceModelSummary(spec, "", problem=str(e))
    summary = FaceModelSummary(spec, str(path), path.stat().st_size if path.is_file() else 0)
    try:
        d = load_face_model_data(spec)
    except RigError as e:
        summary.problem = str(e)
        return summary
    summary.n_vertices, summary.n_faces = d.n_vertices, int(d.faces.shape[0])
    summary.n_shape, summary.n_expression = d.n_shape, d.n_expression
    summary.n_landmarks = int(d.lmk_faces_idx.shape[0]) + (17 if d.dynamic_lmk_faces_idx is not None else 0)
    summary.has_uv = d.uv_coords is not None
    return summary


def cached_extension_builds() -> dict[str, str]:
    """C++ extensions found built in rig's JIT cache (``rig._ext``), by name: the folder of the
    newest build. Whether that build matches the current sources is for the owning module to say."""
    try:
        from rig._ext import default_cache_dir
    except ImportError:
        return {}
    root = default_cache_dir()
    found: dict[str, tuple[float, str]] = {}
    if root.is_dir():
        for folder in root.iterdir():
            libs = list(folder.glob("*.so")) + list(folder.glob("*.pyd"))
            if folder.is_dir() and libs:
                name = folder.name.rsplit("-", 1)[0]
                mtime = max(p.stat().st_mtime for p in libs)
                if name not in found or mtime > found[name][0]:
                    found[name] = (mtime, str(folder))
    return {name: f"built (cache: {folder})" for name, (_, folder) in found.items()}


def _call_hooks(hook_name: str) -> dict[str, str]:
    """The merged answers of the ``hook_name`` hooks of ``KERNEL_STATUS_MODULES``."""
    states: dict[str, str] = {}
    for name in KERNEL_STATUS_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        hook = getattr(module, hook_name, None)
        if callable(hook):
            try:
                states.update({str(k): str(v) for k, v in hook().items()})
            except Exception as e:  # noqa: BLE001 - a broken hook must not break `rig info`
                states[name] = f"{hook_name} hook failed: {type(e).__name__}: {e}"
    return states


def kernel_status() -> dict[str, str]:
    """Builds found in the extension cache, overridden by the ``kernel_status()`` hooks of
    ``KERNEL_STATUS_MODULES``."""
    return {**cached_extension_builds(), **_call_hooks("kernel_status")}


def build_kernels() -> dict[str, str]:
    """Build every kernel of ``KERNEL_STATUS_MODULES`` now (their ``build_kernels()`` hooks): kernel
    name -> "cached (...)", "built in N s (...)" or "failed: ...; the PyTorch reference path runs instead"."""
    return _call_hooks("build_kernels")


def collect_info(face_model_specs: tuple[str, ...] = ("default",), build: bool = False) -> RigInfo:
    """What ``rig info`` shows; ``build``: build the kernels first and report how each went."""
    import numpy
    import torch

    import rig
    from rig.paths import checkpoints_dir

    versions = {"rig": rig.__version__, "python": platform.python_version(), "torch": torch.__version__,
                "numpy": numpy.__version__}
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    ckpt = checkpoints_dir()
    files = sorted((str(p.relative_to(ckpt)), p.stat().st_size) for p in ckpt.rglob("*") if p.is_file()) if ckpt.is_dir() else []
    kernels = {**kernel_status(), **build_kernels()} if build else kernel_status()
    return RigInfo(versions, devices, str(ckpt), files, [summarize_face_model(s) for s in face_model_specs], kernels)


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def format_info(info: RigInfo) -> str:
    """Human-readable report, one item a line."""
    lines = ["versions: " + ", ".join(f"{k} {v}" for k, v in info.versions.items()),
             "devices: " + ", ".join(info.devices), "face models:"]
    for m in info.face_models:
        if m.problem:
            lines.append(f"  {m.spec}: unavailable: {m.problem}")
        else:
            lines.append(f"  {m.spec}: {m.path} ({format_bytes(m.file_bytes)}): {m.n_vertices} vertices, {m.n_faces} triangles, "
                         f"{m.n_shape} shape + {m.n_expression} expression components, {m.n_landmarks} landmarks"
                         + (", UVs" if m.has_uv else ""))
    lines.append(f"checkpoints in {info.checkpoints_dir}:" + ("" if info.checkpoint_files else " none"))
    lines += [f"  {name} ({format_bytes(size)})" for name, size in info.checkpoint_files]
    lines.append("compiled kernels:" + ("" if info.kernels else " none reported"))
    lines += [f"  {k}: {v}" for k, v in sorted(info.kernels.items())]
    return "\n".join(lines)
