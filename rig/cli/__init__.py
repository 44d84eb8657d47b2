"""The ``rig`` command line: parse flags, call the library, print.

``app`` holds the ``main`` click group (one-line errors, ``--debug``, ``--version``), the ``train``
and ``eval`` groups and the option decorators commands share. Every other module holds one command
group and registers its commands on ``main``, ``train_group`` or ``eval_group`` from ``app``:
``face`` (info, mesh, render), ``stylegan`` (generate, convert), ``world`` (world sample), ``train``
(train generator, train encoder), ``eval`` (eval generator), ``track`` (track), ``rignet`` (label,
puppet, train rignet, eval rignet).

Adding commands: write ``rig/cli/NAME.py`` that decorates its functions with ``@main.command``,
``@train_group.command`` or ``@eval_group.command`` (imported from ``rig.cli.app``), then add
``NAME`` to the import line below. Commands import the library inside their bodies so
``rig --help`` stays instant.
"""

from rig.cli.app import main

# Importing a module registers its commands; the names themselves are not used here.
from rig.cli import eval, face, invert, rignet, stylegan, track, train, world  # noqa: F401

__all__ = ["main"]
