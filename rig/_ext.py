"""Build and cache C++ extensions (JIT, ninja) with a warn-and-fall-back policy.

``load_cpp_extension(name, sources)`` compiles the sources with ``torch.utils.cpp_extension.load``
into a build folder keyed by a hash of the source text, the compiler flags, the torch / Python
versions and the environment (``sys.prefix``, torch's folder), under ``<cache>/rig/ext/<name>-<hash>`` (``<cache>`` = ``$XDG_CACHE_HOME`` or
``~/.cache``), so a second process (or a second run) imports the built library in well under a
second. A build that has to compile says so first, in one line on stderr ("building the ... kernel
once (~30 s); cached in ..."), since the caller otherwise sits silent for half a minute;
``build_extension`` builds ahead of use (``rig info --build``). If the build fails, it warns once (``RuntimeWarning``) and returns ``None`` so the caller
can use its reference implementation; ``required=True`` raises ``ExtensionBuildError`` instead.

Kernels parallelise with ``at::parallel_for``. ATen's OpenMP backend implements it inline in its
headers, so an extension compiled without ``-fopenmp`` silently runs every ``parallel_for`` on one
thread. Builds therefore add ``-fopenmp`` (the loader then binds to the ``libgomp.so.1`` torch has
already loaded, so there is one OpenMP runtime and ``torch.set_num_threads`` governs the kernels
too); a compiler without OpenMP gets a second, single-threaded build instead of no kernel.

A build is killed-safe: it runs under an ``flock`` on ``<build folder>.lock`` (released by the kernel
when its holder dies), and a torch ``lock`` baton found in the folder while holding it is stale and
removed, so a build interrupted by SIGKILL never makes the next run wait forever.

The only module-level state is the cache of loaded (or failed) extensions, keyed by build hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Iterator, Sequence

from rig.errors import RigError

DEFAULT_CFLAGS = ("-O3", "-ffp-contract=off", "-fno-fast-math")
OPENMP_FLAGS = ("-fopenmp",)

_LOADED: dict[tuple, ModuleType | Exception] = {}


class ExtensionBuildError(RigError):
    """A C++ extension could not be compiled or imported."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rig/ext`` or ``~/.cache/rig/ext``."""
    from rig.paths import user_cache_dir

    return user_cache_dir() / "ext"


def build_hash(name: str, sources: Sequence[Path], extra_cflags: Sequence[str]) -> str:
    """Hex digest identifying one build: source bytes, flags, torch and Python versions."""
    import torch

    h = hashlib.sha256()
    h.update(name.encode())
    for src in sources:
        h.update(Path(src).name.encode())
        h.update(Path(src).read_bytes())
    h.update(repr(tuple(extra_cflags)).encode())
    h.update(torch.__version__.encode())
    h.update(sys.version.encode())
    # The environment too: torch's build.ninja holds the interpreter's and torch's paths, so two
    # virtual environments sharing one cache would otherwise rebuild on every switch.
    h.update(sys.prefix.encode())
    h.update(os.path.dirname(torch.__file__).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<build_dir>.lock`` while building or loading into ``build_dir``.

    torch's own file baton (``build_dir/lock``) is a plain file that a killed build leaves behind,
    after which every later build waits on it forever. The kernel releases a ``flock`` when its
    holder dies, however it dies, so once we hold ours no live rig process is building here and
    any baton left in the folder is stale: it is removed.
    """
    import fcntl

    with open(build_dir.parent / f"{build_dir.name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            stale = build_dir / "lock"
            if stale.exists():
                stale.unlink(missing_ok=True)
                warnings.warn(f"{build_dir}: removed the lock file of an interrupted build", RuntimeWarning,
                              stacklevel=4)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _variants(extra_cflags: Sequence[str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(cflags, ldflags) to try in order: with OpenMP, then without."""
    flags = tuple(extra_cflags)
    return [(flags + OPENMP_FLAGS, OPENMP_FLAGS), (flags, ())]


def _built_library(build_dir: Path, module_name: str) -> Path | None:
    """The compiled library of ``module_name`` in ``build_dir``, if a build finished there."""
    for pattern in (f"{module_name}*.so", f"{module_name}*.pyd"):
        found = next(iter(sorted(build_dir.glob(pattern))), None)
        if found is not None:
            return found
    return None


def _build_notice(title: str, root: Path) -> None:
    """One line on stderr before a compile; through tqdm so that an open progress bar stays whole."""
    from tqdm import tqdm

    tqdm.write(f"rig: building the {title} kernel once (~30 s); cached in {root}", file=sys.stderr)


def load_cpp_extension(name: str, sources: Sequence[str | os.PathLike], extra_cflags: Sequence[str] = DEFAULT_CFLAGS,
                       required: bool = False, cache_dir: str | os.PathLike | None = None,
                       verbose: bool = False, title: str | None = None) -> ModuleType | None:
    """Compile (once) and import a C++ extension; ``None`` with a warning if that fails.

    name: base name of the extension module (the build hash is appended; sources must define the
        module with ``PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)``).
    sources: .cpp files. extra_cflags: compiler flags (part of the cache key); ``-fopenmp`` is
        added (see the module docstring), and dropped again only if that build fails.
    required: raise ``ExtensionBuildError`` instead of warning and returning ``None``.
    cache_dir: parent of the build folders (default ``default_cache_dir()``).
    title: what the one-line build notice calls the kernel (default ``name``).
    """
    srcs = [Path(s) for s in sources]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # Keyed by what the caller asked for, not the file contents: a running process keeps the
    # kernel it first loaded even if the sources are edited meanwhile (and skips re-hashing).
    request = (name, tuple(str(s) for s in srcs), tuple(extra_cflags), str(root))
    cached = _LOADED.get(request)
    if isinstance(cached, ModuleType):
        return cached
    if isinstance(cached, Exception):
        if required:
            raise ExtensionBuildError(str(cached))
        return None
    errors = []
    announced = False
    for cflags, ldflags in _variants(extra_cflags):
        try:
            key = build_hash(name, srcs, cflags)
        except OSError as e:
            return _failed(name, ExtensionBuildError(f"{name}: cannot read sources ({e})"), required)
        build_dir = root / f"{name}-{key}"
        try:
            build_dir.mkdir(parents=True, exist_ok=True)
            from torch.utils.cpp_extension import load

            if not announced and _built_library(build_dir, f"{name}_{key}") is None:
                _build_notice(title or name, root)
                announced = True

            # The hash is part of the module name so torch's in-process versioning never renames it.
            with _build_lock(build_dir):
                module = load(name=f"{name}_{key}", sources=[str(s) for s in srcs], extra_cflags=list(cflags),
                              extra_ldflags=list(ldflags), build_directory=str(build_dir), verbose=verbose)
        except Exception as e:  # noqa: BLE001 - any build/import failure: next variant, then the reference path
            last = str(e).strip().splitlines()[-1] if str(e).strip() else ""
            errors.append(f"{build_dir}: {type(e).__name__}: {last}")
            continue
        _LOADED[request] = module
        return module
    err = ExtensionBuildError(f"C++ extension '{name}' failed to build ({'; '.join(errors)})")
    _LOADED[request] = err
    return _failed(name, err, required)


def _failed(name: str, err: ExtensionBuildError, required: bool) -> None:
    if required:
        raise err
    warnings.warn(f"{err}; falling back to the PyTorch reference implementation", RuntimeWarning, stacklevel=3)
    return None


def extension_status(name: str, sources: Sequence[str | os.PathLike], extra_cflags: Sequence[str] = DEFAULT_CFLAGS,
                     cache_dir: str | os.PathLike | None = None) -> str:
    """Short state of an extension without compiling: "loaded", "built (cache: DIR)", "not built
    (compiles on first use)", or "failed: ..." if this process already tried and failed."""
    srcs = [Path(s) for s in sources]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = _LOADED.get((name, tuple(str(s) for s in srcs), tuple(extra_cflags), str(root)))
    if isinstance(cached, ModuleType):
        return "loaded"
    if isinstance(cached, Exception):
        return f"failed: {cached}"
    try:
        found = _find_build(name, srcs, extra_cflags, root)
    except OSError as e:
        return f"failed: cannot read sources ({e})"
    if found is not None:
        return f"built{' (OpenMP)' if found[1] else ', single-threaded'} (cache: {found[0]})"
    return "not built (compiles on first use, about 30-40 s; rig info --build builds it now)"


def _find_build(name: str, srcs: Sequence[Path], extra_cflags: Sequence[str], root: Path) -> tuple[Path, bool] | None:
    """(build folder, built with OpenMP) of the variant already built on disk, or ``None``."""
    for cflags, _ in _variants(extra_cflags):
        key = build_hash(name, srcs, cflags)
        folder = root / f"{name}-{key}"
        if _built_library(folder, f"{name}_{key}") is not None:
            return folder, OPENMP_FLAGS[0] in cflags
    return None


def build_extension(name: str, sources: Sequence[str | os.PathLike], extra_cflags: Sequence[str] = DEFAULT_CFLAGS,
                    cache_dir: str | os.PathLike | None = None, title: str | None = None) -> str:
    """Build one extension ahead of its first use (``rig info --build``) and say how that went:
    "cached (...)" (already built), "built in N s (...)", or "failed: ..." (the callers then run
    their PyTorch reference path, as they would at first use)."""
    srcs = [Path(s) for s in sources]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        before = _find_build(name, srcs, extra_cflags, root)
    except OSError as e:
        return f"failed: cannot read sources ({e}); the PyTorch reference path runs instead"
    start = time.perf_counter()
    try:
        load_cpp_extension(name, srcs, extra_cflags, required=True, cache_dir=root, title=title)
    except ExtensionBuildError as e:
        return f"failed: {e}; the PyTorch reference path runs instead"
    after = _find_build(name, srcs, extra_cflags, root)
    where = f"{'OpenMP' if after[1] else 'single-threaded'}; cache: {after[0]}" if after is not None else f"cache: {root}"
    if before is not None:
        return f"cached ({where})"
    return f"built in {time.perf_counter() - start:.0f} s ({where})"
