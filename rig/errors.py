"""The one error hierarchy of rig.

Library code raises these; the CLI turns any ``RigError`` into a single line on stderr and a
non-zero exit code (a traceback only with ``--debug``).
"""


class RigError(Exception):
    """Base class of every error rig raises on purpose."""


class InputError(RigError):
    """A user-supplied file or value is missing, malformed or out of range."""


class CheckpointError(InputError):
    """A model / network file cannot be read or does not describe a supported network."""


class UnsafeFileError(CheckpointError):
    """A file asks to run code or import something outside rig's allow-list; it was refused."""


class ShapeError(RigError, ValueError):
    """A tensor handed across a module boundary has the wrong shape or dtype."""
