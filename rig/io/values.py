"""The value check of every numeric array a user's file hands rig (parameters, latents, SH lighting).

``check_values`` refuses NaN, infinities and magnitudes beyond what the rig or the network allows
(``rig.limits``) with one line naming the file, the key, the first offending element and its value,
e.g. ``p.json: jaw_pose[0] = 1e+300: beyond +-10000 (the most any rig parameter may be)``.
Loaders call it after a file's structure has been checked and before its numbers are used.
"""

from __future__ import annotations

import numpy as np

from rig.errors import InputError


def check_values(arr, source: str, limit: float, what: str = "value", why: str = "") -> np.ndarray:
    """``arr`` as a numpy array if every element is finite with ``|v| <= limit``, else an ``InputError``.

    arr: any shape, a real integer or float dtype (anything else is refused too).
    source: the file (and key) the numbers came from, as the message should name it.
    what: the name of the array in the message (``"latent"``, ``"jaw_pose"``).
    why: a short note on the bound, appended in parentheses.
    """
    a = np.asarray(arr)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{source}: {what} holds {a.dtype} values, expected real numbers")
    if a.dtype.kind != "f":
        if a.size and np.abs(a.astype(np.float64)).max() > limit:
            return check_values(a.astype(np.float64), source, limit, what, why)
        return a
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(a) | (np.abs(a) > limit)
    if not bad.any():
        return a
    first = np.unravel_index(int(np.argmax(bad)), a.shape) if a.ndim else ()
    v = a[first] if a.ndim else a[()]
    where = f"[{', '.join(str(int(i)) for i in first)}]" if a.ndim else ""
    n_bad = int(bad.sum())
    more = f", {n_bad} such values" if n_bad > 1 else ""
    reason = "NaN or infinite, not a usable number" if not np.isfinite(v) else f"beyond +-{limit:g}"
    note = f" ({why})" if why and np.isfinite(v) else ""
    raise InputError(f"{source}: {what}{where} = {float(v):.6g}: {reason}{more}{note}")
