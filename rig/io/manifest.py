"""Output-folder manifests: the settings that made a folder's outputs, so a rerun cannot mix settings.

A command that writes many files into one folder and resumes by skipping the files already there
(``rig generate``) records what made them in ``FOLDER/.rig-manifest.json``::

    {"format": "rig.output_manifest", "format_version": 1, "command": "rig generate",
     "settings": {"--network": "3f2a...", "--trunc": 0.7, ...}}

``claim_folder`` is called once the command's inputs are checked and before its first output:

* no manifest and no outputs of the command: the manifest is written, the run proceeds;
* the same command and settings: resume (existing outputs are skipped, as before manifests);
* other settings, or outputs with no manifest (made before manifests existed): an ``InputError``
  naming the folder and each differing setting (old and new value), unless ``overwrite`` is given;
  then the outputs of the old settings are removed (only names the command says are its own) and
  the new settings are recorded.

The outputs' own bytes stay as their formats define them (PNG as NVIDIA's ``generate.py`` writes it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rig.errors import InputError
from rig.io.atomic import environment_error, make_dirs, remove_empty_dirs, write_text_atomic

MANIFEST_NAME = ".rig-manifest.json"
MANIFEST_FORMAT = "rig.output_manifest"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class Claim:
    """What ``claim_folder`` decided.

    resume: existing outputs were made with these settings and may be skipped.
    removed: outputs of other settings that ``overwrite`` removed.
    """

    resume: bool
    removed: tuple[Path, ...] = ()


def _canonical(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they compare after a JSON round trip (tuples -> lists, keys as strings)."""
    return json.loads(json.dumps(settings, sort_keys=True))


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of ``folder`` ({"command", "settings"}), None when it has none; ``InputError`` naming
    the file when it is malformed."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputError(f"{path}: {path.stat().st_size} bytes is too large for an output manifest")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path}: not a readable output manifest ({type(e).__name__}); remove it or pass --overwrite") from None
    if (not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT
            or not isinstance(data.get("command"), str) or not isinstance(data.get("settings"), dict)):
        raise InputError(f"{path}: not a rig output manifest (format {MANIFEST_FORMAT!r} with command and settings)")
    if data.get("format_version") != MANIFEST_VERSION:
        raise InputError(f"{path}: output manifest version {data.get('format_version')!r}; this rig reads "
                         f"{MANIFEST_VERSION}")
    return {"command": data["command"], "settings": data["settings"]}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    missing = "(unset)"
    return [f"{k} {json.dumps(old.get(k, missing))} (this run: {json.dumps(new.get(k, missing))})"
            for k in keys if old.get(k, missing) != new.get(k, missing)]


def claim_folder(folder: str | os.PathLike, command: str, settings: dict[str, Any], overwrite: bool,
                 own_outputs: Callable[[Path], list[Path]]) -> Claim:
    """Check ``folder`` against this run's ``settings``, then record them; see the module docstring.

    folder: the output folder (created if missing).
    command: e.g. ``"rig generate"``.
    settings: flag name -> JSON-serialisable value, every setting that changes what an output holds
        (not how fast it is made), e.g. ``{"--network": identity, "--trunc": 0.7}``.
    overwrite: replace outputs of other settings instead of refusing.
    own_outputs: lists the files in the folder that are this command's outputs.
    """
    folder = Path(folder)
    settings = _canonical(settings)
    old = read_manifest(folder) if folder.is_dir() else None
    existing = own_outputs(folder) if folder.is_dir() else []
    if old is not None and old["command"] == command and old["settings"] == settings:
        return Claim(resume=not overwrite)
    if old is None and not existing:
        _write(folder, command, settings)
        return Claim(resume=True)
    if not overwrite:
        if old is None:
            raise InputError(f"{folder}: holds {len(existing)} output(s) with no record of the settings that made "
                             f"them; pass --overwrite to replace them, or choose another folder")
        if old["command"] != command:
            raise InputError(f"{folder}: holds the outputs of {old['command']!r}, not of {command!r}; "
                             f"choose another folder")
        raise InputError(f"{folder}: holds outputs of other settings: {'; '.join(_differences(old['settings'], settings))}; "
                         f"pass --overwrite to replace them, or choose another folder")
    removed = []
    for path in existing:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise environment_error(e, path, "cannot remove") from None
        removed.append(path)
    _write(folder, command, settings)
    return Claim(resume=False, removed=tuple(removed))


def _write(folder: Path, command: str, settings: dict[str, Any]) -> None:
    created = make_dirs(folder)
    try:
        write_text_atomic(folder / MANIFEST_NAME, json.dumps(
            {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "command": command,
             "settings": settings}, indent=1, sort_keys=True) + "\n")
    except BaseException:
        remove_empty_dirs(created)
        raise
