"""The first build of a C++ kernel says so in one line on stderr, and ``rig info --build`` builds every
kernel ahead of use and reports each (cached / built / failed). torch's compiler is stubbed here:
the real builds are in ``test_ext_build_lock.py`` and ``test_install.py`` (slow)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from rig import _ext
from rig.cli import main


@pytest.fixture
def stub_compiler(monkeypatch, tmp_path):
    """torch's ``load`` replaced by one that 'builds' instantly (a library file in the build folder);
    ``calls`` counts its builds, ``fail`` makes it raise. The cache and rig's loaded set are private."""
    import torch.utils.cpp_extension

    state = types.SimpleNamespace(calls=0, fail=False)

    def load(name, sources, extra_cflags, extra_ldflags, build_directory, verbose):
        if state.fail:
            raise RuntimeError("Error building extension: g++ not found")
        state.calls += 1
        lib = Path(build_directory) / f"{name}.so"
        if not lib.exists():
            lib.write_bytes(b"")
        return types.ModuleType(name)

    monkeypatch.setattr(torch.utils.cpp_extension, "load", load)
    monkeypatch.setattr(_ext, "_LOADED", {})
    monkeypatch.setattr(_ext, "default_cache_dir", lambda: tmp_path / "cache")
    return state


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "k.cpp"
    src.write_text("// kernel\n")
    return src


def test_a_first_build_prints_one_line_and_a_cached_one_nothing(stub_compiler, tmp_path, capsys):
    src = _source(tmp_path)
    assert _ext.load_cpp_extension("rig_k", [src], title="test") is not None
    err = capsys.readouterr().err
    assert err == f"rig: building the test kernel once (~30 s); cached in {tmp_path / 'cache'}\n"
    _ext._LOADED.clear()  # a new process: the library is on disk now
    assert _ext.load_cpp_extension("rig_k", [src], title="test") is not None
    assert capsys.readouterr().err == ""


def test_a_failed_build_notices_once_then_warns_and_falls_back(stub_compiler, tmp_path, capsys):
    stub_compiler.fail = True
    with pytest.warns(RuntimeWarning, match="falling back to the PyTorch reference"):
        assert _ext.load_cpp_extension("rig_k", [_source(tmp_path)]) is None
    assert capsys.readouterr().err.count("rig: building the rig_k kernel once") == 1  # not again for the second variant


def test_build_extension_reports_built_then_cached_or_failed(stub_compiler, tmp_path, capsys):
    src = _source(tmp_path)
    first = _ext.build_extension("rig_k", [src], title="test")
    assert first.startswith("built in ") and "OpenMP; cache: " in first and "rig_k-" in first
    _ext._LOADED.clear()
    assert _ext.build_extension("rig_k", [src]).startswith("cached (OpenMP; cache: ")
    assert stub_compiler.calls == 2  # a cached build is imported, not skipped: that is what proves it loads
    stub_compiler.fail = True
    _ext._LOADED.clear()
    other = tmp_path / "other.cpp"
    other.write_text("// another kernel\n")
    failed = _ext.build_extension("rig_other", [other])
    assert failed.startswith("failed: C++ extension 'rig_other' failed to build") and "g++ not found" in failed
    assert failed.endswith("the PyTorch reference path runs instead")


def test_rig_info_build_builds_every_kernel_and_plain_info_never_does(stub_compiler):
    plain = CliRunner().invoke(main, ["info"])
    assert plain.exit_code == 0 and stub_compiler.calls == 0
    assert "rig_rasterize_cpp: not built (compiles on first use" in plain.output
    assert "rig_sg2_fir_epilogue: not built" in plain.output and "rig info --build builds it now" in plain.output
    built = CliRunner().invoke(main, ["info", "--build"])
    assert built.exit_code == 0, built.output
    assert stub_compiler.calls == 2
    assert "rig: building the C++ rasterizer kernel once" in built.stderr
    assert "rig: building the fused StyleGAN2 resample + epilogue kernel once" in built.stderr
    lines = dict(line.strip().split(": ", 1) for line in built.stdout.splitlines() if line.startswith("  rig_"))
    assert lines["rig_rasterize_cpp"].startswith("built in ") and lines["rig_sg2_fir_epilogue"].startswith("built in ")
    _ext._LOADED.clear()
    again = CliRunner().invoke(main, ["info", "--build"])
    assert "rig_rasterize_cpp: cached (OpenMP" in again.stdout and "rig_sg2_fir_epilogue: cached (OpenMP" in again.stdout
    assert "building" not in again.stderr
