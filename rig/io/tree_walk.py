"""Converting untrusted nested structures (what a pickle or JSON header decodes to) safely.

A hostile pickle can hand back a DAG whose tree expansion is 2^40 nodes ("billion laughs"), a
structure nested 100,000 levels deep, or a list that contains itself. ``convert_tree`` walks such a
value once per distinct node (shared nodes are converted once and shared again), refuses cycles
and depth beyond a limit, and counts the nodes it visits, raising ``CheckpointError`` naming the
file instead of hanging or hitting ``RecursionError``.
"""

from __future__ import annotations

from typing import Any, Callable

from rig.errors import CheckpointError

MAX_DEPTH = 64
MAX_NODES = 2_000_000

_IN_PROGRESS = object()


def convert_tree(obj: Any, leaf: Callable[[Any, Callable[[Any], Any]], Any], source: str, max_depth: int = MAX_DEPTH,
                 max_nodes: int = MAX_NODES) -> Any:
    """Rebuild ``obj``'s dicts / lists / tuples with ``leaf(x, recurse)`` applied to everything else.

    ``leaf`` returns its argument unchanged for values it does not convert; it converts values
    held inside ``x`` (a stand-in's state) with ``recurse(value)``, which walks them one level deeper. Dict keys are kept as
    they are. Raises ``CheckpointError`` on cycles, depth > ``max_depth`` or > ``max_nodes`` nodes.
    """
    done: dict[int, Any] = {}
    keep: list[Any] = []  # keeps converted inputs alive so their ids stay unique
    count = 0

    def walk(x: Any, depth: int) -> Any:
        nonlocal count
        if isinstance(x, (str, bytes, int, float, bool, type(None))):
            return x
        key = id(x)
        if key in done:
            if done[key] is _IN_PROGRESS:
                raise CheckpointError(f"{source}: the data contains a cycle")
            return done[key]
        count += 1
        if count > max_nodes:
            raise CheckpointError(f"{source}: more than {max_nodes} nested values")
        if depth > max_depth:
            raise CheckpointError(f"{source}: values nested deeper than {max_depth} levels")
        done[key] = _IN_PROGRESS
        keep.append(x)
        if isinstance(x, dict):
            out: Any = type(x)() if type(x) is not dict else {}
            for k, v in x.items():
                out[k] = walk(v, depth + 1)
        elif isinstance(x, list):
            out = [walk(v, depth + 1) for v in x]
        elif isinstance(x, tuple):
            out = tuple(walk(v, depth + 1) for v in x)
        else:
            out = leaf(x, lambda v: walk(v, depth + 1))
        done[key] = out
        return out

    return walk(obj, 0)
