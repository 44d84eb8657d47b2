"""The ``rig`` click group and what its commands share.

``main`` turns errors derived from ``rig.errors.RigError`` into one line on stderr and exit code 1
(a traceback with ``--debug``). ``train_group`` and ``eval_group`` are defined here, not beside their
commands, so any module of ``rig.cli`` can add a ``rig train X`` or ``rig eval X``.
``rig_param_options`` holds the rig-parameter flags; angles are degrees here and radians inside
the library.
"""

from __future__ import annotations

import sys

import click


class _RigGroup(click.Group):
    """Click group that turns rig's own errors into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as e:  # noqa: BLE001 - the CLI boundary
            from rig.errors import RigError

            debug = ctx.params.get("debug", False) or (ctx.obj or {}).get("debug", False)
            if debug:
                raise
            if isinstance(e, RigError):
                click.echo(f"rig: error: {e}", err=True)
                sys.exit(1)
            if isinstance(e, KeyboardInterrupt):
                click.echo("rig: interrupted", err=True)
                sys.exit(130)
            click.echo(f"rig: internal error: {type(e).__name__}: {e} (run with --debug for a traceback)", err=True)
            sys.exit(2)


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
        click.option("--yaw", type=float, default=0.0, show_default=True, help="Head yaw in degrees (+ turns to the head's left)."),
        click.option("--pitch", type=float, default=0.0, show_default=True, help="Head pitch in degrees (+ looks down)."),
        click.option("--roll", type=float, default=0.0, show_default=True, help="Head roll in degrees."),
        click.option("--jaw", type=float, default=None, help="Jaw opening in degrees (overrides the preset's jaw)."),
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
