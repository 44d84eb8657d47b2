"""Test helper: write rig networks in NVIDIA's snapshot pickle format (what their training loop emits).

Each module becomes a call to ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose
``meta['state']`` holds ``_parameters`` / ``_buffers`` / ``_modules`` and, for the top-level
networks, ``_init_kwargs`` with ``dnnlib.util.EasyDict`` sub-dicts; tensors pickle through torch's
own reducers (``_rebuild_parameter``, ``_rebuild_tensor_v2``, ``storage._load_from_bytes``), as in
genuine snapshots. The two NVIDIA module names exist only in ``sys.modules`` while writing.
"""

import collections
import contextlib
import io
import pickle
import sys
import types

import torch


@contextlib.contextmanager
def _fake_nvidia_modules():
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called: only referenced by name
        raise AssertionError("not for calling")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util.EasyDict = easydict
    names = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    saved = {k: sys.modules.get(k) for k in names}
    sys.modules.update(names)
    try:
        yield _reconstruct_persistent_obj, easydict
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _easy(value, easydict):
    if isinstance(value, dict):
        return easydict({k: _easy(v, easydict) for k, v in value.items()})
    if isinstance(value, tuple):
        return [_easy(v, easydict) for v in value]
    return value


class _Pickler(pickle.Pickler):
    def __init__(self, f, reconstruct, easydict, init_kwargs):
        super().__init__(f, protocol=4)
        self._reconstruct = reconstruct
        self._easydict = easydict
        self._init_kwargs = init_kwargs

    def reducer_override(self, obj):
        if isinstance(obj, torch.nn.Module):
            state = {
                "training": obj.training,
                "_parameters": collections.OrderedDict(obj._parameters),
                "_buffers": collections.OrderedDict(obj._buffers),
                "_non_persistent_buffers_set": set(obj._non_persistent_buffers_set),
                "_modules": collections.OrderedDict(obj._modules),
                "_init_args": (),
                "_init_kwargs": _easy(self._init_kwargs.get(id(obj), {}), self._easydict),
            }
            meta = dict(type="class", version=6, module_src="raise SystemExit('never executed')\n",
                        class_name=type(obj).__name__, state=state)
            return self._reconstruct, (meta,)
        return NotImplemented


def nvidia_snapshot_bytes(networks: dict, init_kwargs: dict, training_set_kwargs=None) -> bytes:
    """Pickle ``{'G': ..., 'D': ..., 'G_ema': ...}`` like NVIDIA's training loop.

    ``init_kwargs`` maps each top-level network name to NVIDIA's constructor kwargs.
    """
    with _fake_nvidia_modules() as (reconstruct, easydict):
        kwargs_by_id = {id(net): init_kwargs[name] for name, net in networks.items() if net is not None}
        data = {"training_set_kwargs": _easy(training_set_kwargs, easydict) if training_set_kwargs else None}
        data.update({k: networks.get(k) for k in ("G", "D", "G_ema")})
        data["augment_pipe"] = None
        buf = io.BytesIO()
        _Pickler(buf, reconstruct, easydict, kwargs_by_id).dump(data)
        return buf.getvalue()
