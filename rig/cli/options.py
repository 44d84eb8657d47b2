"""Checked-number options: every number a ``rig`` command takes goes through one type.

``checked_option("--yaw", limits.ANGLE_DEG, default=0.0, help=...)`` is ``click.option`` with a
``Checked`` type: the value is parsed, refused if NaN, infinite, not an integer where one is needed
or outside its ``rig.limits.Range``, and the refusal is an ``InputError`` whose one line names the
flag and the value (``rig: error: --yaw nan: not a finite number; choose -180..180 degrees``, exit 1).
The range is shown in ``--help``. Future commands use the same call; bounds live in ``rig.limits``.
"""

from __future__ import annotations

import click

from rig.limits import Range


class Checked(click.ParamType):
    """A click type for one ``rig.limits.Range``: float or int out, ``InputError`` on a bad value."""

    def __init__(self, rng: Range):
        self.rng = rng
        self.name = "integer" if rng.integer else "number"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        name = param.opts[0] if param is not None and param.opts else self.name
        # An InputError (not click's BadParameter) so the CLI prints one line and exits 1: a value,
        # not the shape of the command line, is wrong.
        return self.rng.check(value, name)

    def get_metavar(self, param, ctx=None):  # click 8.1 and 8.2 signatures
        return "INTEGER" if self.rng.integer else "NUMBER"


def checked_option(*param_decls: str, rng: Range, help: str = "", **kwargs):
    """``click.option`` whose value is checked against ``rng``; the range is appended to ``help``."""
    text = f"{help} Range: {rng.describe()}." if help else f"Range: {rng.describe()}."
    return click.option(*param_decls, type=Checked(rng), help=text, **kwargs)
