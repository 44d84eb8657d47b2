"""The NVIDIA snapshot reader refuses hostile pickles without side effects and parses storages strictly."""

import io
import os
import pickle
import struct

import pytest
import torch

from rig.errors import CheckpointError, UnsafeFileError
from rig.stylegan2.checkpoints import load_networks, load_nvidia_pkl
from rig.stylegan2.nvidia_pickle import LEGACY_MAGIC, parse_legacy_storage, read_snapshot


def _call_global(module: str, name: str, *args) -> bytes:
    """A protocol-2 pickle that calls ``module.name(*args)`` (built by hand: the callee need not exist here)."""
    body = pickle.dumps(tuple(args), protocol=2)[2:-1]
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + body + b"R."


class _RunsShell:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_os_system_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _RunsShell(f"touch {marker}")}))
    with pytest.raises(UnsafeFileError, match="posix.system|os.system"):
        load_networks(path)
    assert not marker.exists()


def test_exec_via_fake_persistent_object_never_runs_module_src(tmp_path):
    marker = tmp_path / "pwned_by_module_src"
    meta = {"type": "class", "version": 6, "class_name": "Generator",
            "module_src": f"open({str(marker)!r}, 'w').write('x')\n",
            "state": {"_init_kwargs": {"z_dim": 4, "c_dim": 0, "w_dim": 4, "img_resolution": 4, "img_channels": 3},
                      "_parameters": {}, "_buffers": {}, "_modules": {}}}
    path = tmp_path / "fake.pkl"
    path.write_bytes(_call_global("torch_utils.persistence", "_reconstruct_persistent_obj", meta))
    with pytest.raises(CheckpointError, match="does not match"):
        load_nvidia_pkl(path)  # parsed as data; the empty state cannot fill a Generator
    assert not marker.exists()


@pytest.mark.parametrize("module,name,arg", [
    ("builtins", "exec", "open('/tmp/rig_pwned_exec', 'w')"),
    ("builtins", "eval", "1+1"),
    ("torch_utils.persistence", "persistent_class", "x"),
    ("dnnlib.util", "call_func_by_name", "os.system"),
    ("numpy", "load", "x.npy"),
    ("torch", "load", "x.pt"),
])
def test_globals_outside_the_allow_list_are_refused(tmp_path, module, name, arg):
    path = tmp_path / "evil.pkl"
    path.write_bytes(_call_global(module, name, arg))
    with pytest.raises(UnsafeFileError, match=f"{module}.{name}"):
        read_snapshot(path)
    assert not os.path.exists("/tmp/rig_pwned_exec")


def _legacy_blob(values: list[float], inner_global: tuple[str, str] = ("torch", "FloatStorage"),
                 count: int | None = None, extra: bytes = b"") -> bytes:
    f = io.BytesIO()
    for obj in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(obj, f, protocol=2)
    key = "140000"
    ref = (b"\x80\x02(X\x07\x00\x00\x00storagec" + inner_global[0].encode() + b"\n" + inner_global[1].encode()
           + b"\n" + pickle.dumps(key, protocol=2)[2:-1] + b"X\x03\x00\x00\x00cpu"
           + pickle.dumps(len(values), protocol=2)[2:-1] + b"NtQ.")
    f.write(ref)
    pickle.dump([key], f, protocol=2)
    f.write(struct.pack("<q", len(values) if count is None else count))
    f.write(struct.pack(f"<{len(values)}f", *values))
    f.write(extra)
    return f.getvalue()


def test_legacy_storage_blob_is_parsed():
    t = parse_legacy_storage(_legacy_blob([1.5, -2.0, 3.25]))
    assert t.dtype == torch.float32 and t.tolist() == [1.5, -2.0, 3.25]


@pytest.mark.parametrize("kwargs,error", [
    ({"inner_global": ("os", "system")}, UnsafeFileError),
    ({"count": 5}, CheckpointError),
    ({"extra": b"\x00"}, CheckpointError),
])
def test_malformed_or_hostile_storage_blobs_are_refused(kwargs, error):
    with pytest.raises(error):
        parse_legacy_storage(_legacy_blob([1.0, 2.0], **kwargs))


def test_wrong_magic_is_refused():
    blob = bytearray(_legacy_blob([1.0]))
    blob[5] ^= 0xFF  # inside the pickled magic number
    with pytest.raises(CheckpointError):
        parse_legacy_storage(bytes(blob))


def _body(obj) -> bytes:
    """Opcodes that push ``obj`` (protocol 4 without its header, frame and STOP)."""
    data = pickle.dumps(obj, protocol=4)
    return data[11:-1] if data[2:3] == b"\x95" else data[2:-1]  # skip PROTO (and FRAME if present)


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    storage = b"ctorch.storage\n_load_from_bytes\n" + _body((_legacy_blob([1.0, 2.0]),)) + b"R"
    # _rebuild_tensor_v2(storage, offset 0, size (3,), stride (1,), False, None): 3 elements from a 2-element storage.
    data = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(" + storage + _body(0) + _body((3,)) + _body((1,))
            + b"\x89Nt" + b"R.")
    path = tmp_path / "oob.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="past its storage"):
        read_snapshot(path)


def test_truncated_and_missing_files(tmp_path, tiny64_pkl):
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(tiny64_pkl.read_bytes()[:100000])
    with pytest.raises(CheckpointError):
        read_snapshot(cut)
    with pytest.raises(CheckpointError, match="not found"):
        read_snapshot(tmp_path / "nope.pkl")
