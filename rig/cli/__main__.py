"""``python -m rig.cli``: the same command as the ``rig`` console script."""

from rig.cli import main

main(prog_name="rig")
