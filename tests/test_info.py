"""``rig.info``: kernel-status hooks, extension-cache discovery, face-model summaries."""

from __future__ import annotations

import sys
import types

import rig.info as info


def test_kernel_status_hooks_are_merged_and_failures_reported(monkeypatch, tmp_path):
    good = types.ModuleType("fake_good")
    good.kernel_status = lambda: {"conv": "built"}
    bad = types.ModuleType("fake_bad")

    def broken():
        raise RuntimeError("boom")

    bad.kernel_status = broken
    monkeypatch.setitem(sys.modules, "fake_good", good)
    monkeypatch.setitem(sys.modules, "fake_bad", bad)
    monkeypatch.setattr(info, "KERNEL_STATUS_MODULES", ("fake_good", "fake_bad", "not_a_module_anywhere"))
    monkeypatch.setattr(info, "cached_extension_builds", lambda: {"conv": "built (cache: x)", "other": "built (cache: y)"})
    states = info.kernel_status()
    assert states["conv"] == "built"  # the module's own answer wins over the cache scan
    assert states["other"].startswith("built")
    assert "boom" in states["fake_bad"]


def test_extension_cache_scan_finds_built_libraries(monkeypatch, tmp_path):
    import rig._ext

    (tmp_path / "myop-abc123").mkdir()
    (tmp_path / "myop-abc123" / "myop.so").write_bytes(b"")
    (tmp_path / "unbuilt-999").mkdir()
    monkeypatch.setattr(rig._ext, "default_cache_dir", lambda: tmp_path)
    found = info.cached_extension_builds()
    assert list(found) == ["myop"] and "myop-abc123" in found["myop"]


def test_face_model_summary_reports_problems_instead_of_raising(tmp_path, flame_fixture_dir):
    missing = info.summarize_face_model(str(tmp_path / "nope.npz"))
    assert "not found" in missing.problem
    s = info.summarize_face_model(str(flame_fixture_dir / "generic_model.pkl"))
    assert (s.n_vertices, s.n_faces, s.n_shape, s.n_expression, s.n_landmarks) == (162, 320, 300, 100, 68)
    text = info.format_info(info.RigInfo({"rig": "0"}, ["cpu"], str(tmp_path), [("a.npz", 2048)], [s, missing], {}))
    assert "a.npz (2.0 KiB)" in text and "unavailable" in text
