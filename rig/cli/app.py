"""The ``rig`` click group and what its commands share.

``main`` turns every failure into one line on stderr and the exit code of the README's table
(``rig.errors``: 1 bad input, 2 usage, 3 environment, 4 a batch with failed jobs, 70 a bug; a
traceback with ``--debug``). Numeric options are ``rig.cli.options.checked_option``s. ``train_group`` and ``eval_group`` are defined here, not beside their
commands, so any module of ``rig.cli`` can add a ``rig train X`` or ``rig eval X``.
``rig_param_options`` holds the rig-parameter flags; angles are degrees here and radians inside
the library.
"""

from __future__ import annotations

import sys

import click

from rig import limits
from rig.cli.options import checked_option


class _RigGroup(click.Group):
    """Click group that turns every failure into one line on stderr and the exit code of the README's table.

    ``RigError``: its class's ``exit_code`` (1 bad input, 3 environment, 4 batch with failed jobs);
    click's usage errors keep click's 2; a ``MemoryError`` or an OSError of the machine refusing a
    write (``rig.io.atomic.is_environment_error``) that no writer caught is 3; anything else is an
    internal error (70). ``--debug`` re-raises instead, for the traceback.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            if _debug(ctx):
                raise
            click.echo("rig: interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # noqa: BLE001 - the CLI boundary
            if _debug(ctx):
                raise
            from rig import errors
            from rig.io.atomic import is_environment_error

            if isinstance(e, errors.RigError):
                _one_line(f"rig: error: {e}")
                sys.exit(e.exit_code)
            if is_environment_error(e):
                where = getattr(e, "filename", None)
                what = "out of memory" if isinstance(e, MemoryError) else (e.strerror or type(e).__name__)
                _one_line(f"rig: error: {_user_path(where) + ': ' if where else ''}{what}")
                sys.exit(errors.EXIT_ENVIRONMENT)
            _one_line(f"rig: internal error: {type(e).__name__}: {e} (run with --debug for a traceback)")
            sys.exit(errors.EXIT_INTERNAL)


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug", False) or (ctx.obj or {}).get("debug", False))


def _one_line(text: str) -> None:
    click.echo(" ".join(text.split("\n")), err=True)


def _user_path(name) -> str:
    """A path with rig's temporary-file naming (``.NAME.tmp-PID-HOST-XXXXXXXX.SUF``) turned back into ``NAME.SUF``."""
    import os
    import re

    name = os.fsdecode(name)
    head, tail = os.path.split(name)
    m = re.fullmatch(r"\.(.*)\.tmp-(?:\d+-[0-9a-f]{8}-)?[a-z0-9_]{8}(\.[^.]*)?", tail)
    return os.path.join(head, m.group(1) + (m.group(2) or "")) if m else name


@click.group(cls=_RigGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="rig", message="rig %(version)s")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """rig: StyleGAN as a renderer for a FLAME-layout parametric face rig."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def rig_param_options(fn):
    """The rig-parameter flags shared by ``rig mesh``, ``rig render`` and ``rig puppet``."""
    options = [
        click.option("--face-model", "face_model", default="default", show_default=True,
                     help="'default' (the embedded head), a FLAME generic_model.pkl, or a rig face-model .npz."),
        click.option("--params", "params_file", type=click.Path(dir_okay=False), default=None,
                     help="Rig-parameter file (.npz or .json) with keys shape, expression, global_pose, "
                          "neck_pose, jaw_pose, eye_pose, translation."),
        click.option("--expr", "expr", default=None, help="Expression preset (neutral, smile, surprise, ...)."),
        checked_option("--yaw", rng=limits.ANGLE_DEG, default=0.0, show_default=True,
                       help="Head yaw in degrees (+ turns to the head's left)."),
        checked_option("--pitch", rng=limits.ANGLE_DEG, default=0.0, show_default=True,
                       help="Head pitch in degrees (+ looks down)."),
        checked_option("--roll", rng=limits.ANGLE_DEG, default=0.0, show_default=True, help="Head roll in degrees."),
        checked_option("--jaw", rng=limits.ANGLE_DEG, default=None,
                       help="Jaw opening in degrees (overrides the preset's jaw)."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


@main.group("train")
def train_group() -> None:
    """Train rig's networks on a world dataset (runs resume from their snapshots)."""


@main.group("eval")
def eval_group() -> None:
    """Measure rig's networks."""
